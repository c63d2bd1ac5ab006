"""Assignment 08 (train a CNN) as data for the end-to-end tests: wrong students whose bug is named.

Cells: test_architecture (1), test_learns (1), test_target (2), test_budget (1). Every submission
that gets as far as training trains once per seed (the test cells share the run), so this module
keeps to a handful of submissions. The over-budget student is stopped at the time limit
(training.CPU_BUDGET_S CPU seconds, or training.WALL_LIMIT_S seconds on a busy machine) in both
of its runs; the finer budget cases are unit-tested in tests/grading/test_training.py. The tests
are in test_assignments.py and test_08_train_a_cnn_pipeline.py.
"""

A = "08-train-a-cnn"
CELLS = ["test_architecture", "test_learns", "test_target", "test_budget"]
POINTS = {"test_architecture": 1.0, "test_learns": 1.0, "test_target": 2.0, "test_budget": 1.0}

SEED_ARTICLE_FLATTEN = '''
def build_model():
    return nn.Sequential(nn.Conv2d(1, 32, 3), nn.ReLU(), nn.Conv2d(32, 64, 3), nn.ReLU(),
                         nn.Flatten(), nn.Linear(64 * 6 * 6, 128), nn.ReLU(), nn.Linear(128, 10))
'''

ELEVEN_CLASSES = '''
def build_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 11),
    )
'''

NO_OPTIMIZER_STEP = '''
def train_model(model, train_set):
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = nn.CrossEntropyLoss()
    x, y = train_set.images, train_set.labels
    model.train()
    for i in range(0, len(x), 64):
        opt.zero_grad()
        loss_fn(model(x[i:i + 64]), y[i:i + 64]).backward()
    return model
'''

# The solution's training, then a leftover loop that evaluates the model again and again: minutes of
# CPU that do not change the model, so it is as accurate as the solution's when it is stopped.
OVER_BUDGET = '''
def train_model(model, train_set):
    train.fit(model, train_set, epochs=2, lr=1e-2, shift=0, progress=False)
    for _ in range(10_000):
        train.evaluate(model, train_set)
    return model
'''

# The solution's model with the flatten size left to nn.LazyLinear, as part 1's text suggests.
LAZY_LINEAR = '''
def build_model():
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, stride=2, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Flatten(), nn.LazyLinear(10),
    )
'''

# The solution with train.fit's default progress bar, which writes to stderr in the graded cells:
# nbgrader alone would give those cells 0.
PROGRESS_BAR = '''
def train_model(model, train_set):
    train.fit(model, train_set, epochs=2, lr=1e-2, shift=0)
    return model
'''

SUBMISSIONS = {
    "progress_bar": {"train_model": PROGRESS_BAR},
    "seed_article_flatten": {"build_model": SEED_ARTICLE_FLATTEN},
    "eleven_classes": {"build_model": ELEVEN_CLASSES},
    "no_optimizer_step": {"train_model": NO_OPTIMIZER_STEP},
    "over_budget": {"train_model": OVER_BUDGET},
    "lazy_linear": {"build_model": LAZY_LINEAR},
}

CANNOT_RUN = "model cannot run a (2, 1, 28, 28) batch, so it cannot be trained: see test_architecture's message"

# student -> (expected fraction of each cell's points in CELLS order, {cell: text expected in its output})
EXPECTED = {
    "progress_bar": ([1, 1, 1, 1], {}),
    "seed_article_flatten": ([0, 0, 0, 0], {
        "test_architecture": "nn.Linear(2304, 128) receives 36864 features per image",
        "test_learns": CANNOT_RUN, "test_target": CANNOT_RUN, "test_budget": CANNOT_RUN}),
    "eleven_classes": ([0, 1, 1, 1], {"test_architecture": "Likely bug: 11 classes; there are 10 digits"}),
    "no_optimizer_step": ([1, 0, 0, 1], {"test_learns": "Likely bug: the model does not learn"}),
    "over_budget": ([1, 1, 1, 0], {"test_budget": "was stopped there (seed 0)"}),
    "lazy_linear": ([1, 1, 1, 1], {}),
}

UNTOUCHED_TEXTS = {"test_architecture": "not implemented yet"}
DELETE = ()  # no student deletes cells
DELETED_SCORES = None
TIMEOUT = None  # the default per-cell limit; over_budget is stopped by training's own budget
RELATIVE = True  # EXPECTED scores are fractions of each cell's points
