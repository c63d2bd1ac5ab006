"""The book's editions: one per language, built from the same sources.

English is the source text. A translated edition replaces each paragraph from its gettext catalog
(``locale/<language>/LC_MESSAGES/``) and shows the same executed notebooks, so its numbers and
figures are the English edition's. Where a chapter glues words rather than a number into its
text ("rows 1 to 3", "the sandbox"), `glue_phrase` glues them once per language from the values
the code computed, and a translated paragraph shows its own language's phrase.
"""

__all__ = ["EDITIONS", "SOURCE_LANGUAGE", "EDITION_SETTINGS", "PRINT_SETTINGS", "phrase_key", "glue_phrase"]

SOURCE_LANGUAGE = "en"
# language -> (name in its own language, folder of the edition inside _build/html)
EDITIONS = {"en": ("English", ""), "zh_CN": ("简体中文", "zh_CN")}
# what a translated edition says where the English one's texts come from _config.yml, not the pages
EDITION_SETTINGS = {
    "zh_CN": {"title": "卷积：从零开始到微调",
              "sphinx": {"nb_code_prompt_show": "显示代码单元", "nb_code_prompt_hide": "隐藏代码单元"}},
}
# what the printed edition (`conv-course pdf --edition <language>`) says in its own words: the print
# document's language, the contents' heading, the widget picture's alt text and note ({url}: the
# page in the HTML edition), and (fontconfig language, Debian package) of a font with its glyphs
PRINT_SETTINGS = {
    "en": {"lang": "en", "contents": "Contents",
           "widget_alt": "A picture of the interactive widget, as the HTML edition first shows it.",
           "widget_note": "Interactive in the HTML edition: {url}", "font": None},
    "zh_CN": {"lang": "zh-CN", "contents": "目录",
              "widget_alt": "交互式小部件的图片，与 HTML 版最初显示的一致。",
              "widget_note": "可在 HTML 版中交互使用：{url}", "font": ("zh", "fonts-wqy-microhei")},
}


def phrase_key(name, language):
    """The glue key of phrase `name` in `language` (the source language's is `name` itself)."""
    return name if language == SOURCE_LANGUAGE else f"{name}__{language}"


def glue_phrase(name, **phrases):
    """Glue `name` for the book's text in every edition's language, e.g.
    ``glue_phrase("rows", en=f"rows {a} to {b}", zh_CN=f"第 {a} 至 {b} 行")``.

    ``{glue:text}`name``` then shows the English phrase in the English edition and, inside a
    translated paragraph, the phrase of that edition's language.
    """
    from myst_nb import glue

    missing = sorted(set(EDITIONS) - set(phrases))
    unknown = sorted(set(phrases) - set(EDITIONS))
    if missing or unknown:
        raise ValueError(f"glue_phrase({name!r}): give one phrase per edition {sorted(EDITIONS)}; "
                         f"missing {missing}, unknown {unknown}")
    for language, text in phrases.items():
        if not isinstance(text, str):
            raise TypeError(f"glue_phrase({name!r}): the {language} phrase must be a str, not {type(text).__name__}")
        glue(phrase_key(name, language), text, display=False)
