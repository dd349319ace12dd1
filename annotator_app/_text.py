"""Text that users or files supplied, shown as literal text in Streamlit's Markdown contexts.

Streamlit renders Markdown (GitHub-flavoured, plus its own ``:color[…]``, ``:material/…:``,
emoji shortcodes and ``$…$`` math) in ``st.markdown``, ``st.caption``, ``st.info``/``warning``/
``error``/``success``, widget labels, radio options, tab names, image captions and progress
texts. A comment, a file, scene, user or rule-base name, or an error message quoting one, must
never become a link, an image, a format or a formula there: :func:`literal` makes it plain text.
"""

from __future__ import annotations

import re

__all__ = ["literal", "one_line"]

#: Every ASCII punctuation character: CommonMark lets each be escaped with a backslash.
_PUNCT = re.compile(r"([!\"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])")
#: Bare-URL and e-mail autolinks of GitHub-flavoured Markdown are found in the text *after*
#: escapes are resolved, so backslashes do not stop them: a WORD JOINER (U+2060, invisible,
#: no line break) inside ``://``, after ``www`` before ``.`` and before ``@`` does.
_WJ = "\u2060"
_AUTOLINK = re.compile(r"(:(?=\\/\\/)|(?i:www)(?=\\\.))|(?=\\@)")
_LEADING_SPACE = re.compile(r"^[ \t]+", re.MULTILINE)


def literal(text: object) -> str:
    """Markdown source that Streamlit shows as exactly ``text``: no link, image, format or formula.

    Parameters
    ----------
    text : object
        Any value; ``str(text)`` is shown (None as an empty string).

    Returns
    -------
    str
        Every ASCII punctuation character backslash-escaped (``<``, ``&`` too: no HTML, no
        entity), a WORD JOINER (U+2060, invisible) breaking every bare-URL or e-mail autolink,
        line breaks kept as hard breaks and leading blanks as no-break spaces (no code block).

    Examples
    --------
    >>> literal("*B*[clk](javascript:x)")
    '\\\\*B\\\\*\\\\[clk\\\\]\\\\(javascript\\\\:x\\\\)'
    >>> literal("http://h") == "http\\\\:\\u2060\\\\/\\\\/h"
    True
    >>> literal(None)
    ''
    """
    if text is None:
        return ""
    s = str(text).replace("\r\n", "\n").replace("\r", "\n")
    s = _PUNCT.sub(r"\\\1", s)
    s = _AUTOLINK.sub(lambda m: (m.group(1) or "") + _WJ, s)
    s = _LEADING_SPACE.sub(lambda m: m.group(0).replace("\t", "    ").replace(" ", "\u00a0"), s)
    return s.replace("\n", "  \n")


def one_line(text: object, *, limit: int = 300) -> str:
    """``text`` on one line (line breaks and tabs as spaces), at most ``limit`` characters.

    Examples
    --------
    >>> one_line("a\\nb\\tc")
    'a b c'
    """
    s = " ".join(str(text).split())
    return s if len(s) <= limit else s[: limit - 1] + "…"
