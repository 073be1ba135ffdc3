"""Task files: the YAML a user writes, validated by pydantic, and the Task that runs it.

```yaml
id: login-basic
instruction: Log in as "ada" with password "lovelace".
start: {page: pages/login.html}   # served from this file's folder on 127.0.0.1; or {url: ...}
viewport: {width: 1024, height: 768}
max_steps: 10
success:                          # all must hold at the end
  - js: "document.querySelector('#welcome') !== null"
  - url: "/dashboard"             # regex searched in the page URL
  - text: "Welcome, ada"          # visible text contains
script:                           # optional: steps for the scripted policy
  - "click(start_box='(120,80)')"
```
"""
from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Union

import yaml
from pydantic import (BaseModel, ConfigDict, Discriminator, Field, Tag, ValidationError,
                      field_validator, model_validator)

from actions.errors import ConfigError, EnvironmentFailure
from agent.task import Outcome
from tasks.checks import Check, CheckResult, JsCheck, TextCheck, UrlCheck, run_checks
from tasks.server import PageServer

_CHECK_KEYS = ("js", "url", "text")


def _check_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        keys = [k for k in _CHECK_KEYS if k in value]
        return keys[0] if len(keys) == 1 else None
    if isinstance(value, (JsCheck, UrlCheck, TextCheck)):
        return _CHECK_KEYS[(JsCheck, UrlCheck, TextCheck).index(type(value))]
    return None


CheckField = Annotated[
    Union[Annotated[JsCheck, Tag("js")], Annotated[UrlCheck, Tag("url")], Annotated[TextCheck, Tag("text")]],
    Discriminator(_check_kind, custom_error_type="check_kind",
                  custom_error_message="a check is exactly one of {js: EXPR}, {url: REGEX}, {text: TEXT}"),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Start(_Strict):
    """Where a task starts: a page next to the task file, or a URL."""

    page: str | None = None
    url: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Start":
        if (self.page is None) == (self.url is None):
            raise ValueError("give exactly one of page (a file next to the task file) or url")
        return self

    @field_validator("page")
    @classmethod
    def _relative_inside(cls, page: str | None) -> str | None:
        if page is None:
            return None
        p = PurePosixPath(page)
        if not page.strip() or p.is_absolute() or ".." in p.parts:
            raise ValueError(f"{page!r} must be a relative path inside the task file's folder")
        return page

    @field_validator("url")
    @classmethod
    def _http(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r} must start with http:// or https://")
        return url


class Viewport(_Strict):
    width: int = Field(default=1024, ge=200, le=4096)
    height: int = Field(default=768, ge=200, le=4096)


class TaskSpec(_Strict):
    """The task file's schema. Unknown keys are rejected so typos do not pass silently."""

    id: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    instruction: str = Field(min_length=1)
    start: Start
    viewport: Viewport = Viewport()
    max_steps: int = Field(default=10, ge=1, le=500)
    success: list[CheckField] = Field(min_length=1)
    script: list[str] = Field(default_factory=list)
    allowed_origins: list[str] | None = None


def _format_loc(loc: tuple) -> str:
    parts = list(loc)
    # A tagged union puts the tag in the path (success.0.js.js); users wrote success.0.js.
    if len(parts) >= 4 and parts[0] == "success" and parts[2] in _CHECK_KEYS:
        del parts[2]
    return ".".join(str(p) for p in parts) or "(top level)"


def config_error(path: Path, e: ValidationError) -> ConfigError:
    """A pydantic error on a YAML file as one ConfigError, a line per problem: `FILE: field.path: message`."""
    lines = [f"{path}: {_format_loc(err['loc'])}: {err['msg'][0].lower() + err['msg'][1:]}"
             for err in e.errors()]
    return ConfigError("\n".join(lines))


def load_task_file(path: str | Path) -> "FileTask":
    """Read and validate a task file. Raises ConfigError naming the file and the offending field."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such task file") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read task file: {e}") from None
    try:
        data = yaml.safe_load(text)  # safe_load: a task file never constructs Python objects
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a task file is a YAML mapping with id, instruction, start, success")
    try:
        spec = TaskSpec.model_validate(data)
    except ValidationError as e:
        raise config_error(path, e) from None
    if spec.start.page is not None:
        page_file = path.parent / spec.start.page.split("?")[0].split("#")[0]
        if not page_file.is_file():
            raise ConfigError(f"{path}: start.page: {spec.start.page} not found next to the task file "
                              f"(looked for {page_file})")
    return FileTask(spec, path)


class FileTask:
    """A task file as the loop runs it (implements agent.task.Task)."""

    observe_selector: str | None = None
    stop_on_success: bool = True
    seed: int | None = None

    def __init__(self, spec: TaskSpec, path: Path | None = None):
        self.spec = spec
        self.path = Path(path) if path is not None else None
        self.id = spec.id
        self.instruction = spec.instruction
        self.max_steps = spec.max_steps
        self.viewport = (spec.viewport.width, spec.viewport.height)
        self.script = list(spec.script)
        self._server: PageServer | None = None
        self.start_url: str | None = None
        self.last_checks: list[CheckResult] = []

    @property
    def allowed_origins(self) -> list[str] | None:
        """Origins the browser may visit; the local page server's origin is added once it runs."""
        if self.spec.allowed_origins is None:
            return None
        extra = [self._server.origin] if self._server is not None else []
        return [*self.spec.allowed_origins, *extra]

    def start_server(self) -> None:
        """Start the page server now (setup does it too); lets a caller learn the origin early."""
        if self.spec.start.page is not None and self._server is None:
            root = self.path.parent if self.path is not None else Path.cwd()
            self._server = PageServer(root)

    def setup(self, driver) -> None:
        self.start_server()
        if self._server is not None:
            self.start_url = self._server.url(self.spec.start.page)
        else:
            self.start_url = self.spec.start.url
        driver.goto(self.start_url)

    def evaluate(self, driver) -> Outcome:
        page = getattr(driver, "page", None)
        if page is None:
            raise EnvironmentFailure("task file checks need a browser page; this driver has none")
        self.last_checks = run_checks(list(self.spec.success), page)
        ok = all(r.ok for r in self.last_checks)
        failed = [f"{r.check} ({r.detail})" for r in self.last_checks if not r.ok]
        return Outcome(done=False, success=ok, reward=1.0 if ok else 0.0,
                       detail="all checks hold" if ok else "failed: " + "; ".join(failed))

    def teardown(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    def __repr__(self) -> str:
        return f"FileTask({self.id!r}, path={str(self.path)!r})"
