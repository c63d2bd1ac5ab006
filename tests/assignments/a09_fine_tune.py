"""Assignment 09 (fine-tune) as data for the end-to-end tests: wrong students whose bug is named.

Cells (1 point each): test_freeze, test_optimizer_coverage, test_optimizer_lrs, test_lora_init,
test_lora_forward, test_add_lora_wrap, test_add_lora_trainable. All submissions are autograded in
ONE nbgrader call (tests/assignments/conftest.py); the answers are independent, so one student can
carry several bugs. The tests are in test_assignments.py.
"""

A = "09-fine-tune"
CELLS = ["test_freeze", "test_optimizer_coverage", "test_optimizer_lrs", "test_lora_init", "test_lora_forward",
         "test_add_lora_wrap", "test_add_lora_trainable"]
POINTS = dict.fromkeys(CELLS, 1.0)

FREEZE_CONV_WEIGHTS_ONLY = '''
def freeze_backbone(model):
    for m in model.features.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.requires_grad = False
    return model
'''

SAME_LR = '''
def make_optimizer(model, base_lr):
    return torch.optim.AdamW([{"params": model.features.parameters(), "lr": base_lr},
                              {"params": model.head.parameters(), "lr": base_lr}], lr=base_lr)
'''

HEAD_FORGOTTEN = '''
def make_optimizer(model, base_lr):
    return torch.optim.SGD(model.features.parameters(), lr=base_lr)
'''


def lora_source(scale="alpha / rank", b_init="torch.zeros(c_out, rank)", geometry="c.stride, c.padding, c.dilation"):
    return f'''
class LoRAConv2d(nn.Module):
    def __init__(self, conv, rank=4, alpha=4):
        super().__init__()
        self.conv = conv
        for p in conv.parameters():
            p.requires_grad = False
        c_out, c_in, kh, kw = conv.weight.shape
        self.scale = {scale}
        self.lora_A = nn.Parameter(torch.randn(rank, c_in * kh * kw) * 0.01)
        self.lora_B = nn.Parameter({b_init})

    def forward(self, x):
        c = self.conv
        delta = (self.lora_B @ self.lora_A).reshape(c.weight.shape)
        return c(x) + F.conv2d(x, self.scale * delta, None, {geometry})
'''


TOP_LEVEL_ONLY = '''
def add_lora(model, rank=4, alpha=4):
    for p in model.parameters():
        p.requires_grad = False
    for name, child in model.features.named_children():
        if isinstance(child, nn.Conv2d):
            setattr(model.features, name, LoRAConv2d(child, rank, alpha))
    return model
'''

SUBMISSIONS = {
    "bn_trainable_same_lr_geometry_ignored": {"freeze_backbone": FREEZE_CONV_WEIGHTS_ONLY, "make_optimizer": SAME_LR,
                                              "lora_conv": lora_source(geometry="")},
    "head_forgotten_and_unscaled": {"make_optimizer": HEAD_FORGOTTEN, "lora_conv": lora_source(scale="1.0")},
    "b_random": {"lora_conv": lora_source(b_init="torch.randn(c_out, rank)")},
    "top_level_only": {"add_lora": TOP_LEVEL_ONLY},
}

# student -> (expected score per cell in CELLS order, {cell: text expected in its output})
EXPECTED = {
    # the visible conv has stride 1, padding 1: F.conv2d without padding gives a smaller map
    "bn_trainable_same_lr_geometry_ignored": ([0, 1, 0, 0, 0, 0, 1], {
        "test_freeze": "Likely bug: BatchNorm weights/biases (or conv biases) are still trainable",
        "test_optimizer_lrs": "Likely bug: the head learns at the backbone's rate",
        "test_lora_init": "Likely bug: the low-rank path ignores the wrapped conv's stride/padding/dilation",
        "test_lora_forward": "Likely bug: the low-rank path ignores the wrapped conv's stride/padding/dilation"}),
    "head_forgotten_and_unscaled": ([1, 0, 0, 1, 0, 1, 1], {
        "test_optimizer_coverage": "Likely bug: the head left out of the optimizer",
        "test_lora_forward": "Likely bug: the update is not scaled by alpha / rank"}),
    # a random B changes the output from the start, so add_lora's "unchanged output" check fails too
    "b_random": ([1, 1, 1, 0, 1, 0, 1], {"test_lora_init": "Likely bug: lora_B is not zero at the start"}),
    "top_level_only": ([1, 1, 1, 1, 1, 0, 0], {
        "test_add_lora_wrap": "Likely bug: only direct children were replaced",
        "test_add_lora_trainable": "Likely bug: the head is frozen"}),
}

UNTOUCHED_TEXTS = {"test_freeze": "not implemented yet"}

# A student who deleted a test cell and an answer cell: both are restored and graded.
DELETE = ["test_freeze", "make_optimizer"]
DELETED_SCORES = [1, 0, 0, 1, 1, 1, 1]

TIMEOUT = 15  # seconds per cell
RELATIVE = False
