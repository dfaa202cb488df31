"""The shop's own look in the console (`[brand]` in config.toml): its colour as a served
stylesheet, so the Content-Security-Policy stays `style-src 'self'` (no inline styles), and its
logo as a file served from the configured path."""

from __future__ import annotations

from aiohttp import web

from bot.content.config import LOGO_TYPES
from bot.web.console.parts import console_of

#: the text colours on the brand colour: whichever reads better
LIGHT_INK, DARK_INK = "#ffffff", "#1f2933"
#: the logo is an image, never a document: an SVG's scripts and links do nothing
LOGO_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"


async def stylesheet(request: web.Request) -> web.Response:
    colour = console_of(request).config.brand.colour
    css = f":root {{ --accent: {colour}; --accent-ink: {ink_on(colour)}; }}\n"
    return web.Response(text=css, content_type="text/css", headers={"Cache-Control": "no-cache"})


async def logo(request: web.Request) -> web.StreamResponse:
    config = console_of(request).config
    path = config.logo_path
    if path is None or not path.is_file():
        raise web.HTTPNotFound()
    return web.FileResponse(
        path,
        headers={
            "Content-Type": LOGO_TYPES[path.suffix.lower()],
            "Content-Security-Policy": LOGO_CSP,
            "Cache-Control": "no-cache",
        },
    )


def ink_on(colour: str) -> str:
    """White or near-black text, whichever contrasts more with `colour` (WCAG contrast)."""
    background = luminance(colour)
    against_light = (luminance(LIGHT_INK) + 0.05) / (background + 0.05)
    against_dark = (background + 0.05) / (luminance(DARK_INK) + 0.05)
    return LIGHT_INK if against_light >= against_dark else DARK_INK


def luminance(colour: str) -> float:
    """WCAG relative luminance of #rgb or #rrggbb."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(d * 2 for d in digits)
    channels = [int(digits[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b
