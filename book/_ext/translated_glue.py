"""Sphinx extension: ``{glue:text}`` works inside translated paragraphs, in their language.

Sphinx's i18n transform parses each translated message as a small document of its own, after
myst-nb has finished with the page: the glued values of the page's notebook are no longer at hand
there, and myst-nb's role fails ("No key ... found in glue data for this document"). The same key
read as ``<this page>::key`` becomes a pending reference that myst-nb resolves when the page is
written, from the values its execution saved. So a translation carries the same
``{glue:text}`key:format``` as the English sentence, and both editions print one computed value;
where the chapter glued a phrase per language (`conv_course.editions.glue_phrase`), the
translated paragraph gets its own language's.
"""

from myst_nb.ext.glue.crossref import read_glue_cache
from myst_nb.ext.glue.roles import PasteTextRole

from conv_course.editions import phrase_key


class GlueTextAnywhere(PasteTextRole):
    """myst-nb's ``glue:text`` role; outside the notebook's own parse, a reference to this page."""

    def run(self):
        if "nb_renderer" not in self.document and "::" not in self.text:
            env = self.document.settings.env
            key, colon, spec = self.text.partition(":")
            translated = phrase_key(key, env.config.language)
            if translated in read_glue_cache(env.mystnb_config.output_folder, env.docname):
                key = translated
            # the role splits off a format first, so the reference always carries one
            self.text = f"/{env.doc2path(env.docname, False)}::{key}:{spec if colon else 's'}"
        return super().run()


def setup(app):
    app.setup_extension("myst_nb")
    app.add_role_to_domain("glue", "text", GlueTextAnywhere(), override=True)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
