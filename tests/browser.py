"""Open a local HTML file in headless Debian chromium through Playwright, for tests of tunelab's pages.

Uses the system chromium (``shutil.which("chromium")`` or /usr/bin/chromium) and never downloads a browser
(no ``playwright install``). JavaScript is off by default, to prove a page needs no script; every request
whose URL is not ``file:`` or ``data:`` is recorded and aborted, so a page that reaches out is caught
without touching the network. Tests call :func:`require_browser` first: it skips when Playwright or
chromium is missing.

    require_browser()
    with open_page(path) as visit:
        visit.page.get_by_role("heading", name="Rules").is_visible()
        assert not visit.console_errors and not visit.requests
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
LOCAL_SCHEMES = ("file:", "data:", "about:")


def chromium_path() -> str | None:
    """The system chromium executable, or None."""
    found = shutil.which("chromium")
    if found:
        return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def browser_missing() -> str | None:
    """Why a browser test cannot run here (Playwright or chromium missing), or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed"
    if chromium_path() is None:
        return "chromium is not installed (apt-get install chromium)"
    return None


def require_browser() -> None:
    """Skip the calling test when Playwright or chromium is missing."""
    import pytest

    reason = browser_missing()
    if reason:
        pytest.skip(reason)


@dataclass
class Visit:
    """An open page, with what went wrong while it loaded and was used."""

    page: Any  # playwright.sync_api.Page
    console_errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)  # URLs that were not file:, data: or about:

    @property
    def title(self) -> str:
        return self.page.title()

    def visible_headings(self, selector: str = "h1, h2, h3") -> list[str]:
        """The text of every visible heading matching ``selector``, in page order."""
        return [e.inner_text().strip() for e in self.page.query_selector_all(selector) if e.is_visible()]


@contextmanager
def open_page(path: str | Path, *, javascript: bool = False, width: int = 1200) -> Iterator[Visit]:
    """Yield a :class:`Visit` of the local file ``path`` in headless chromium (a fresh profile)."""
    from playwright.sync_api import sync_playwright

    exe = chromium_path()
    if exe is None:
        raise RuntimeError("chromium is not installed")
    with tempfile.TemporaryDirectory(prefix="tunelab-chromium-") as profile, sync_playwright() as pw:
        ctx = pw.chromium.launch_persistent_context(
            user_data_dir=profile,
            executable_path=exe,
            headless=True,
            args=CHROMIUM_ARGS,
            java_script_enabled=javascript,
            viewport={"width": width, "height": 900},
            offline=True,
        )
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            visit = Visit(page)

            def on_route(route: Any) -> None:
                url = route.request.url
                if url.startswith(LOCAL_SCHEMES):
                    route.continue_()
                else:
                    visit.requests.append(url)
                    route.abort()

            ctx.route("**/*", on_route)
            page.on("console", lambda m: m.type == "error" and visit.console_errors.append(m.text))
            page.on("pageerror", lambda e: visit.console_errors.append(str(e)))
            page.on("requestfailed", lambda r: _record(visit, r.url))
            page.goto(Path(path).resolve().as_uri())
            page.wait_for_load_state("load")
            yield visit
        finally:
            ctx.close()


def _record(visit: Visit, url: str) -> None:
    if not url.startswith(LOCAL_SCHEMES) and url not in visit.requests:
        visit.requests.append(url)


def snapshot(path: str | Path) -> tuple[str, list[str], list[str], list[str]]:
    """(title, visible headings, console errors, non-local requests) of ``path`` with JavaScript off."""
    with open_page(path) as visit:
        return visit.title, visit.visible_headings(), list(visit.console_errors), list(visit.requests)
