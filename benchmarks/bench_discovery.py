"""Discovering N installed plugins in a fresh process: hookline vs pluggy vs stevedore (issue 4).

For each N (10, 100, 500) this builds a real virtual environment holding hookline (from a wheel
built from this checkout), pluggy and stevedore (from the package index), plus N fake plugin
distributions: ``hlbench_plugin_NNNN-1.0.dist-info`` whose ``entry_points.txt`` declares one
``hookline.plugins`` entry (the group all three tools are pointed at) and a one-constant
module, everything byte-compiled. Then it times whole processes, ``python -c ...``, one process
per sample, interleaved round-robin, and prints medians and ratios to
``python -c "import pluggy"``, the floor of any pluggy host.

Before timing it checks, in the children, that every imported module has its ``.pyc``,
that stevedore's cache is enabled and warm, and that hookline's warm runs never import
``importlib.metadata``; after timing, that the warm caches stayed warm.

The venvs live outside /tmp (stevedore disables its cache for interpreters under /tmp), by
default in ``~/.cache/hookline-bench`` (``--root`` or ``$HOOKLINE_BENCH_DIR``), and are reused
while N, the Python version and the hookline wheel's contents are unchanged. ``--source DIR``
benchmarks another checkout of hookline (a patch under study)::

    python benchmarks/bench_discovery.py [--quick] [--sizes N ...] [--root DIR] [--source DIR]
                                         [--repeats R] [--json PATH]
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Case, Results, check, compare, finish, note, parse_args

NAME = "discovery"
REPO = Path(__file__).resolve().parent.parent
GROUP = "hookline.plugins"
SIZES = (10, 100, 500)
QUICK_SIZES = (10, 100)
TARGET_N = 500
BASELINE = "import pluggy"
NOISY = 0.15  # an IQR of the baseline above this fraction of its median: a busy machine

# What would change how a child interpreter behaves. PYTHONDONTWRITEBYTECODE is set in the
# developers' shells: the children must use (and be free to write) .pyc files like a user's.
_SCRUBBED = ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP",
             "PYTHONPROFILEIMPORTTIME", "PYTHONNOUSERSITE", "PYTHONSAFEPATH", "PYTHONWARNINGS",
             "PYTHONINSPECT", "VIRTUAL_ENV", "XDG_CACHE_HOME", "HOOKLINE_NO_CACHE",
             "HOOKLINE_CACHE_DIR", "HOOKLINE_PLUGINS", "HOOKLINE_DISABLE_PLUGINS",
             "HOOKLINE_DISABLE_PLUGIN_AUTOLOAD")

_LIST_HOOKLINE = "from hookline._discovery import installed\nprint(len(installed()))"
_LIST_STEVEDORE = (
    f"from stevedore._cache import get_group_all\nprint(len(get_group_all({GROUP!r})))"
)
_LOAD_HOOKLINE = (
    "from hookline.config import Config\n"
    "from hookline._discovery import installed\n"
    "from hookline._loader import load_entry_points\n"
    "print(len(load_entry_points(installed(), Config()).loaded()))"
)


# --------------------------------------------------------------------------------------------
# The environments


@dataclass(frozen=True)
class Env:
    """One benchmark environment: a venv with N fake plugins, and its scratch folders."""

    n: int
    root: Path

    @property
    def python(self) -> Path:
        return self.root / "venv" / "bin" / "python"

    @property
    def cwd(self) -> Path:
        """The children's working folder: ``python -c`` puts it on sys.path, so it stays put."""
        return self.root / "cwd"

    def scratch(self, name: str) -> Path:
        return self.root / "scratch" / name


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
    env.update(extra or {})
    return env


def _run(argv: Sequence[str | os.PathLike[str]], *, extra: Mapping[str, str] | None = None,
         cwd: Path | None = None) -> str:
    """Run a setup or probe command; its stdout, or an error showing what it printed."""
    command = [os.fspath(arg) for arg in argv]
    proc = subprocess.run(command, capture_output=True, text=True, env=_child_env(extra),
                          cwd=cwd, stdin=subprocess.DEVNULL, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n"
                           f"{proc.stdout}\n{proc.stderr}")
    return proc.stdout


def build_wheel(source: Path, out: Path) -> Path:
    """A hookline wheel built from a clean copy of ``source`` (no stale ``build/``)."""
    src = out / "src"
    shutil.copytree(source, src, ignore=shutil.ignore_patterns(
        ".git", "build", "dist", "*.egg-info", "__pycache__", ".tox", ".venv", ".*_cache",
        ".hypothesis", "*.db", "*.db-*"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", out / "wheel",
          src])
    (wheel,) = (out / "wheel").glob("hookline-*.whl")
    return wheel


def wheel_digest(wheel: Path) -> str:
    """A hash of what the wheel holds (names and bytes), independent of zip timestamps."""
    digest = hashlib.sha256()
    with zipfile.ZipFile(wheel) as archive:
        for name in sorted(archive.namelist()):
            digest.update(name.encode() + b"\0" + archive.read(name) + b"\0")
    return digest.hexdigest()[:12]


def _record_hash(data: bytes) -> str:
    raw = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={raw},{len(data)}"


def write_fake_plugins(site_packages: Path, n: int, python_tag: str) -> None:
    """N distributions as pip leaves them: a dist-info folder and a one-constant module."""
    for i in range(n):
        module = f"hlbench_plugin_{i:04d}"
        info = f"{module}-1.0.dist-info"
        (site_packages / info).mkdir()
        files = {
            f"{module}.py": f'"""Fake plugin {i} of the discovery benchmark."""\n\nVALUE = {i}\n',
            f"{info}/METADATA": f"Metadata-Version: 2.1\nName: hlbench-plugin-{i:04d}\n"
                                "Version: 1.0\nSummary: hookline discovery benchmark plugin\n",
            f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: bench_discovery\n"
                             "Root-Is-Purelib: true\nTag: py3-none-any\n",
            f"{info}/INSTALLER": "pip\n",
            f"{info}/top_level.txt": f"{module}\n",
            f"{info}/entry_points.txt": f"[{GROUP}]\nplugin{i:04d} = {module}\n",
        }
        record = []
        for rel, text in files.items():
            data = text.encode()
            (site_packages / rel).write_bytes(data)
            record.append(f"{rel},{_record_hash(data)}")
        record += [f"__pycache__/{module}.{python_tag}.pyc,,", f"{info}/RECORD,,"]
        (site_packages / info / "RECORD").write_text("\n".join(record) + "\n")


def prepare(base: Path, n: int, wheel: Path, key: str) -> Env:
    """The venv for ``n`` plugins, reused when it exists for the same wheel and Python."""
    env = Env(n, base / f"n{n}-{key}")
    if (env.root / "READY").exists():
        return env
    for stale in base.glob(f"n{n}-*"):
        shutil.rmtree(stale)
    print(f"  creating {env.root} ...", flush=True)
    env.cwd.mkdir(parents=True)
    _run([sys.executable, "-m", "venv", env.root / "venv"])
    _run([env.python, "-m", "pip", "install", "--quiet", wheel, "pluggy", "stevedore"])
    paths = json.loads(_run([env.python, "-c", "import json, sys, sysconfig; print(json.dumps("
                                                "[sysconfig.get_path('purelib'), "
                                                "sys.implementation.cache_tag]))"]))
    site_packages = Path(paths[0])
    write_fake_plugins(site_packages, n, paths[1])
    _run([env.python, "-m", "compileall", "-q", site_packages])  # no child pays compilation
    (env.root / "READY").write_text(f"{n} plugins, hookline wheel {key}\n")
    return env


# --------------------------------------------------------------------------------------------
# The commands


@dataclass(frozen=True)
class Command:
    """One timed command: ``python -c code`` with extra environment, maybe from a clean cache."""

    name: str
    code: str
    expect: str | None = None  # what the child must print: the number of plugins it found
    extra: dict[str, str] = field(default_factory=dict)
    reset: Path | None = None  # emptied before every run: a cold cache


def commands(env: Env) -> list[Command]:
    n = str(env.n)
    warm = {"HOOKLINE_CACHE_DIR": str(env.scratch("hookline-warm")),
            "XDG_CACHE_HOME": str(env.scratch("xdg-warm"))}  # stevedore's cache folder
    cold_hookline, cold_stevedore = env.scratch("hookline-cold"), env.scratch("xdg-cold")
    cold = {"HOOKLINE_CACHE_DIR": str(cold_hookline), "XDG_CACHE_HOME": str(cold_stevedore)}
    return [
        Command("python -c pass", "pass"),
        Command("import pluggy", "import pluggy"),
        Command("import stevedore", "import stevedore"),
        Command("import hookline", "import hookline"),
        Command("list: pluggy host (importlib.metadata)",
                f"import pluggy\nfrom importlib.metadata import entry_points\n"
                f"print(len(entry_points(group={GROUP!r})))", n),
        Command("list: stevedore, warm cache", _LIST_STEVEDORE, n, warm),
        Command("list: stevedore, cold cache", _LIST_STEVEDORE, n, cold, cold_stevedore),
        Command("list: hookline, warm cache", _LIST_HOOKLINE, n, warm),
        Command("list: hookline, cold cache", _LIST_HOOKLINE, n, cold, cold_hookline),
        Command("load all: pluggy",
                f"import pluggy\npm = pluggy.PluginManager('x')\n"
                f"print(pm.load_setuptools_entrypoints({GROUP!r}))", n),
        Command("load all: stevedore, warm cache",
                f"from stevedore.extension import ExtensionManager\n"
                f"print(len(ExtensionManager({GROUP!r}, invoke_on_load=False).names()))",
                n, warm),
        Command("load all: hookline, warm cache", _LOAD_HOOKLINE, n, warm),
        Command("load all: hookline, cold cache", _LOAD_HOOKLINE, n, cold, cold_hookline),
    ]


def _empty(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)


class Runner:
    """Runs the commands of one environment in fresh processes, noting each one's CPU time.

    CPU time (user + system) leaves out the time a process waited for a core: on a busy
    shared machine it is the steadier figure; the targets are on wall time.
    """

    def __init__(self, env: Env) -> None:
        self.env = env
        self.cpu: dict[str, list[float]] = {}

    def check(self, command: Command) -> None:
        """One run whose output is checked (it also fills the warm caches)."""
        if command.reset is not None:
            _empty(command.reset)
        out = _run([self.env.python, "-c", command.code], extra=command.extra,
                   cwd=self.env.cwd).strip()
        if command.expect is not None and out != command.expect:
            raise RuntimeError(f"{command.name}: expected {command.expect} plugins, got {out!r}")

    def timed(self, command: Command) -> None:
        """One run, as the harness times it: start the process, wait for it to end."""
        if command.reset is not None:  # an rmtree of one small file: ~0.1 ms of the timing
            _empty(command.reset)
        proc = subprocess.Popen([os.fspath(self.env.python), "-c", command.code],
                                env=_child_env(command.extra), cwd=self.env.cwd,
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            raise RuntimeError(f"{command.name} failed ({proc.returncode})")
        self.cpu.setdefault(command.name, []).append(usage.ru_utime + usage.ru_stime)

    def case(self, command: Command) -> Case:
        return Case(command.name, lambda: self.timed(command))


# --------------------------------------------------------------------------------------------
# Checks: the warm caches really are warm, nothing pays for compiling

_PROBE_STEVEDORE = """
import json, os, sys
from stevedore import _cache
digest, _ = _cache._hash_settings_for_path(tuple(sys.path))
path = os.path.join(_cache._c._dir, digest)
print(json.dumps({"disabled": _cache._c._disable_caching, "file": path,
                  "exists": os.path.exists(path)}))
"""

_PROBE_HOOKLINE = """
import json, sys
from hookline.config import Config
from hookline._discovery import cache_path, installed
from hookline._loader import load_entry_points
METADATA = ("importlib.metadata", "importlib_metadata")
found = installed()
listed = [m for m in METADATA if m in sys.modules]
load_entry_points(found, Config())
loaded = [m for m in METADATA if m in sys.modules]
print(json.dumps({"file": str(cache_path()), "exists": cache_path().exists(),
                  "after_list": listed, "after_load": loaded,
                  "dont_write_bytecode": sys.dont_write_bytecode}))
"""

# Run with -B, so that no missing .pyc gets written: every imported module must have one.
_PROBE_PYC = f"""
import importlib.util, json, os, sys
import pluggy
from stevedore.extension import ExtensionManager
from hookline.config import Config
from hookline._discovery import installed
from hookline._loader import load_entry_points
pluggy.PluginManager("x").load_setuptools_entrypoints({GROUP!r})
ExtensionManager({GROUP!r}, invoke_on_load=False)
load_entry_points(installed(use_cache=False), Config())
missing = sorted(
    name for name, module in list(sys.modules.items())
    if (getattr(module, "__file__", None) or "").endswith(".py")
    and not os.path.exists(importlib.util.cache_from_source(module.__file__))
)
print(json.dumps(missing))
"""


def _probe(env: Env, code: str, extra: Mapping[str, str], *flags: str) -> Any:
    out = _run([env.python, *flags, "-c", code], extra=extra, cwd=env.cwd)
    return json.loads(out.strip().splitlines()[-1])


def check_pyc(env: Env) -> list[str]:
    """The modules the children import without a .pyc (should be none)."""
    missing: list[str] = _probe(env, _PROBE_PYC,
                                {"XDG_CACHE_HOME": str(env.scratch("xdg-probe"))}, "-B")
    note(f"N = {env.n}: modules imported without a .pyc: {', '.join(missing) or 'none'}")
    return [f"N = {env.n}: no .pyc for {', '.join(missing)}"] if missing else []


def check_warm(env: Env, warm: Mapping[str, str], when: str) -> list[str]:
    """Whether stevedore's and hookline's warm caches are in use, checked in a child."""
    stevedore = _probe(env, _PROBE_STEVEDORE, warm)
    hookline = _probe(env, _PROBE_HOOKLINE, warm)
    state = "DISABLED" if stevedore["disabled"] else "enabled, "
    state += "" if stevedore["disabled"] else ("warm" if stevedore["exists"] else "COLD")
    note(f"N = {env.n}, {when}: stevedore cache {state} ({stevedore['file']})")
    note(f"N = {env.n}, {when}: hookline cache {'warm' if hookline['exists'] else 'COLD'} "
         f"({hookline['file']}); importlib.metadata imported by the warm listing: "
         f"{', '.join(hookline['after_list']) or 'no'}, by warm loading: "
         f"{', '.join(hookline['after_load']) or 'no'}")
    problems = []
    if stevedore["disabled"] or not stevedore["exists"]:
        problems.append(f"N = {env.n}, {when}: stevedore's warm cache is not in use")
    if not hookline["exists"] or hookline["after_list"]:
        problems.append(f"N = {env.n}, {when}: hookline's warm listing scanned the metadata")
    if hookline["dont_write_bytecode"]:
        problems.append(f"N = {env.n}: the children run with sys.dont_write_bytecode set")
    return problems


# --------------------------------------------------------------------------------------------
# Report


def _iqr(values: Sequence[float]) -> float:
    if len(values) < 4:
        return max(values) - min(values)
    q1, _, q3 = statistics.quantiles(values, n=4)
    return q3 - q1


def _paired(values: Sequence[float], reference: Sequence[float]) -> float:
    return statistics.median(a / b for a, b in zip(values, reference))


def table(n: int, results: Results, cpu: Mapping[str, Sequence[float]], repeats: int) -> str:
    """Wall-clock ms of whole processes (median, IQR, min), the paired ratio; the same in CPU."""
    width = max(len(name) for name in results.samples)
    lines = [f"\nN = {n} installed plugins: whole processes, median of {repeats} interleaved "
             f"rounds; ratios to `{BASELINE}` paired per round",
             f"  {'command':<{width}}  {'ms':>6}  {'±IQR':>5}  {'min':>6}  {'ratio':>6}  "
             f"{'cpu ms':>6}  {'ratio':>6}"]
    for name, samples in results.samples.items():
        lines.append(f"  {name:<{width}}  {results.median(name) / 1e6:>6.1f}  "
                     f"{_iqr(samples) / 1e6:>5.1f}  {min(samples) / 1e6:>6.1f}  "
                     f"{results.ratio(name):>5.2f}x  {statistics.median(cpu[name]) * 1e3:>6.1f}  "
                     f"{_paired(cpu[name], cpu[BASELINE]):>5.2f}x")
    return "\n".join(lines)


def targets(n: int, results: Results) -> None:
    hookline_load = "load all: hookline, warm cache"
    where = "" if n == TARGET_N else f" (at N = {n}; the targets are set at N = {TARGET_N})"
    print(f"\nTargets{where}:")
    check(f"hookline listing {n} plugins, warm cache, whole process, x import pluggy",
          results.ratio("list: hookline, warm cache"), "<=", 1.3)
    check(f"hookline loading all {n}, warm cache, x pluggy loading all",
          results.ratio(hookline_load, "load all: pluggy"), "<", 1.0)
    check(f"hookline loading all {n}, warm cache, x stevedore loading all (warm cache)",
          results.ratio(hookline_load, "load all: stevedore, warm cache"), "<", 1.0)
    check("import hookline, x import pluggy", results.ratio("import hookline"), "<=", 1.15)


def _versions(env: Env) -> str:
    code = ("import sys, importlib.metadata as m; print('Python', sys.version.split()[0], *(d + "
            "' ' + m.version(d) for d in ('hookline', 'pluggy', 'stevedore')), sep=', ')")
    return _run([env.python, "-c", code]).strip()


def _options(argv: Sequence[str] | None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--sizes", type=int, nargs="+")
    parser.add_argument("--root", type=Path, default=Path(
        os.environ.get("HOOKLINE_BENCH_DIR") or Path.home() / ".cache" / "hookline-bench"))
    parser.add_argument("--source", type=Path, default=REPO)
    return parser.parse_known_args(argv)


def main(argv: list[str] | None = None) -> int:
    own, rest = _options(sys.argv[1:] if argv is None else argv)
    args = parse_args((__doc__ or NAME).partition("\n")[0] + " Also: --sizes N [N ...], "
                      "--root DIR (the venvs), --source DIR (the hookline to build).", rest)
    sizes = own.sizes or (QUICK_SIZES if args.quick else SIZES)
    root = own.root.expanduser().resolve()
    if root.is_relative_to("/tmp"):
        print(f"--root {root} is under /tmp, where stevedore disables its cache", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="hookline-wheel-") as tmp:
        wheel = build_wheel(own.source.resolve(), Path(tmp))
        key = f"py{sys.version_info[0]}{sys.version_info[1]}-{wheel_digest(wheel)}"
        print(f"discovery: N = {', '.join(map(str, sizes))}; {args.repeats} rounds; hookline "
              f"from {own.source} (wheel {key}); venvs in {root}", flush=True)
        envs = [prepare(root, n, wheel, key) for n in sizes]
    print(_versions(envs[0]))

    problems: list[str] = []
    last: Results | None = None
    for env in envs:
        todo = commands(env)
        runner = Runner(env)
        warm = next(c.extra for c in todo if c.name == "list: hookline, warm cache")
        problems += check_pyc(env)
        for command in todo:
            runner.check(command)
        problems += check_warm(env, warm, "before timing")
        last = compare(f"N = {env.n}", [runner.case(c) for c in todo], reference=BASELINE,
                       repeats=args.repeats, min_time=0, show=False)  # one process per sample
        problems += check_warm(env, warm, "after timing")
        cpu = {name: runs[1:] for name, runs in runner.cpu.items()}  # not the calibration run
        print(table(env.n, last, cpu, args.repeats), flush=True)
        noise = _iqr(last.samples[BASELINE]) / last.median(BASELINE)
        if noise > NOISY:
            note(f"N = {env.n}: noisy run (`{BASELINE}` varied by ±{noise:.0%}); the machine "
                 "was busy, rerun before trusting these figures")

    assert last is not None
    targets(max(sizes), last)
    for problem in problems:
        note(f"INVALID: {problem}")
    status = finish(args, NAME)
    return 1 if problems else status


if __name__ == "__main__":
    raise SystemExit(main())
