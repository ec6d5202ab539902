"""The web UI: a static single-page app served by the registry itself.

`/` and every `/ui/...` page answer with index.html; the app's files are under
`/ui/static/`. There is no build step: plain ES modules and one style sheet, shipped as
package data. The app uses only the admin API (`/api/v1/...`, signed in with the session
cookie of `/api/v1/session`), rendering every value with DOM text nodes, never as HTML.
Every response carries a strict Content-Security-Policy: no inline script or style, no
other origin, no framing.
"""

from __future__ import annotations

from pathlib import Path

# index.html, the ES modules and the style sheet; served by cargohold.http.ui.
STATIC = Path(__file__).parent / "static"
