"""`qualify` — the command behind every make target.

Exit codes: 0 pass, 1 fail, 2 incomplete or a usage error (bad node, profile, duration, run dir...).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

import yaml

from qualify.errors import QualifyError, UsageError
from qualify.names import check_node_name
from qualify.terminal import say

CHECKS_DIR = Path(__file__).with_name("checks")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except QualifyError as exc:
        say(f"qualify: error: {exc}")
        return 2
    except KeyboardInterrupt:
        print("qualify: interrupted", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qualify", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    run = verbs.add_parser("run", help="qualify one or more nodes (make qualify)")
    _add_run_options(run, duration_help="length of long checks: 90s, 30m, 12h")
    run.add_argument("--checks", help="pytest -k expression selecting checks, e.g. 'microcode or thermal'")
    run.set_defaults(func=_run)

    soak = verbs.add_parser("soak", help="freeze watch through idle and load phases, for hours (make soak)")
    _add_run_options(soak, duration_help="length of the soak (default checks.soak.duration, 12h): 90s, 30m, 12h")
    soak.set_defaults(func=_soak, checks="soak")

    nightly = verbs.add_parser("nightly", help="install a systemd timer that soaks nodes every night")
    nightly.add_argument("action", choices=["install"])
    nightly.add_argument("nodes", nargs="+", metavar="NODE")
    nightly.add_argument("--at", default="22:00", help="start time, systemd OnCalendar time (default 22:00)")
    nightly.add_argument("--duration", default="8h", help="length of each night's soak (default 8h)")
    nightly.add_argument("--unit-dir", type=Path, default=Path("/etc/systemd/system"),
                         help="where the .service and .timer go (default /etc/systemd/system)")
    nightly.set_defaults(func=_nightly)

    report = verbs.add_parser("report", help="re-render a run's report from its stored data (make report)")
    report.add_argument("run_dir", type=Path, help="reports/<node>/<run-id> (or reports/<node> for the newest)")
    report.set_defaults(func=_report)

    compare = verbs.add_parser("compare", help="side-by-side thermal report of several runs (make compare)")
    compare.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN", help="reports/<node>/<run-id> ...")
    compare.add_argument("--output", type=Path, help="HTML file to write (default reports/compare-<time>.html)")
    compare.set_defaults(func=_compare)

    cluster = verbs.add_parser("cluster", help="siblings compared, each against its history (make cluster)")
    cluster.add_argument("nodes", nargs="+", metavar="NODE", help="the nodes to compare (their newest runs)")
    cluster.add_argument("--run", action="store_true", help="qualify the nodes first (in parallel)")
    cluster.add_argument("--golden", help="compare against this node instead of the siblings' median")
    cluster.add_argument("--tolerance", type=float, default=0.10,
                         help="allowed deviation from the reference, as a share (default 0.10)")
    cluster.add_argument("--reports-dir", help="where runs are (default ./reports)")
    cluster.set_defaults(func=_cluster)

    export = verbs.add_parser("export", help="write a run's results for other tools (Prometheus textfile)")
    export.add_argument("format", choices=["prometheus"])
    export.add_argument("run_dir", type=Path, help="reports/<node>/<run-id> (or reports/<node> for the newest)")
    export.add_argument("--output", type=Path, help="file to write (default <run dir>/qualify.prom)")
    export.set_defaults(func=_export)

    lab = verbs.add_parser("lab", help="the built-in lab of simulated nodes (make lab-up / lab-down)")
    lab.add_argument("action", choices=["up", "down", "status"])
    lab.set_defaults(func=_lab)

    prepare = verbs.add_parser("prepare", help="install the node-side tools with apt")
    prepare.add_argument("node")
    prepare.add_argument("--profile")
    prepare.set_defaults(func=_prepare)

    profile = verbs.add_parser("profile", help="print a node's profile merged; `profile init NODE` writes one "
                                               "from the live node (make profile); `profile reference`: every key")
    profile.add_argument("words", nargs="+", metavar="[init] NODE | reference")
    profile.add_argument("--profile", help="profile file instead of profiles/<node>.yaml")
    profile.add_argument("--peers", help="init: the nodes at the far ends of its links, a,b "
                                         "(asked for their addresses)")
    profile.add_argument("--output", type=Path, help="init: file to write (default profiles/<node>.yaml); "
                                                     "reference: file to write (default: print it)")
    profile.add_argument("--force", action="store_true", help="init: overwrite an existing file")
    profile.add_argument("--diff", action="store_true",
                         help="init: show the difference to the existing file, write nothing")
    profile.set_defaults(func=_profile)
    return parser


def _add_run_options(verb: argparse.ArgumentParser, duration_help: str) -> None:
    verb.add_argument("nodes", nargs="+", metavar="NODE", help="node name(s); several run in parallel")
    verb.add_argument("--profile", help="profile file instead of profiles/<node>.yaml")
    verb.add_argument("--duration", help=duration_help)
    verb.add_argument("--label", action="append", default=[], help="key=value[,key=value] recorded with the run")
    verb.add_argument("--reports-dir", help="where runs go (default ./reports)")
    verb.add_argument("--peers", help="nodes at the far ends of the links, a,b: with no links in the profile, the "
                                      "links to them are found at run start (several NODEs are each other's peers)")
    verb.add_argument("--inventory", type=Path,
                      help="Ansible inventory (YAML or INI): NODE is then a host pattern (group, glob, a:&b, !c)")
    verb.add_argument("--parallel", type=int, default=0, help="at most this many nodes at once (default: all)")
    verb.add_argument("--overlay", action="append", default=[], help=argparse.SUPPRESS)  # from --inventory


def _run(args: argparse.Namespace) -> int:
    from qualify.options import duration_option, parse_labels
    from qualify.overlays import resolve_profile

    if args.inventory:
        args.nodes = _from_inventory(args)
    if args.parallel < 0:
        raise UsageError(f"--parallel {args.parallel}: expected a number of nodes (0: all at once)")
    nodes = _node_names(args.nodes)
    if not nodes:
        raise UsageError("no node given: make qualify NODE=<name> (or NODE=\"pve1 pve2\")")
    if args.duration:
        duration_option(args.duration)
    if args.checks:
        _check_selection(args.checks)
    parse_labels(args.label)
    for node in nodes:  # every profile valid before anything starts
        overlay = getattr(args, "inventory_overlays", {}).get(node)
        resolve_profile(node, args.profile, extra=[Path(overlay)] if overlay else [])
    if len(nodes) == 1:
        return _run_one(nodes[0], args)
    return _run_parallel(nodes, args)


def _from_inventory(args: argparse.Namespace) -> list[str]:
    """The hosts of an inventory pattern; their connection vars as overlays the child runs read."""
    from qualify.cluster.ansible import hosts_with_overlays
    from qualify.store import reports_dir

    base = Path(args.reports_dir).resolve() if args.reports_dir else reports_dir()
    folder = base / ".inventory"
    folder.mkdir(parents=True, exist_ok=True)
    hosts = []
    for pattern in args.nodes:
        for host, overlay in hosts_with_overlays(args.inventory, pattern):
            host = check_node_name(host)
            path = folder / f"{host}.yaml"
            path.write_text(yaml.safe_dump(overlay, sort_keys=False))
            hosts.append(host)
    if len(hosts) == 1:
        args.overlay = [str(folder / f"{hosts[0]}.yaml")]
    args.inventory_overlays = {h: str(folder / f"{h}.yaml") for h in hosts}
    return list(dict.fromkeys(hosts))


def _node_names(items: list[str]) -> list[str]:
    """NODE="pve1 pve2" and several arguments alike; each a valid node name (it becomes a directory name)."""
    return [check_node_name(n) for item in items for n in item.split()]


def _check_selection(expression: str) -> None:
    """A CHECKS expression pytest cannot parse: its own message, before any run directory exists."""
    from _pytest.mark.expression import Expression  # pytest's -k parser (no public name for it)

    try:
        Expression.compile(expression.lstrip())
    except SyntaxError as exc:
        raise UsageError(f"CHECKS={expression!r}: Wrong expression passed to '-k': {exc.text}: "
                         f"at column {exc.offset}: {exc.msg}") from None


def _shared_options(args: argparse.Namespace) -> list[str]:
    """Options of `qualify run` that mean the same to the plugin and to a child `qualify run`."""
    argv = []
    for option in ("profile", "duration", "reports_dir"):
        if getattr(args, option):
            argv += [f"--{option.replace('_', '-')}", str(getattr(args, option))]
    for label in args.label:
        argv += ["--label", label]
    for overlay in getattr(args, "overlay", []):
        argv += ["--overlay", overlay]
    return argv


def _pytest_args(node: str, args: argparse.Namespace) -> list[str]:
    argv = [str(CHECKS_DIR), "-c", str(CHECKS_DIR / "pytest.ini"), "--rootdir", str(CHECKS_DIR),
            "--node", node, *_shared_options(args)]
    argv += ["--peers", args.peers] if getattr(args, "peers", None) else []
    return argv + (["-k", args.checks] if args.checks else [])


def _run_one(node: str, args: argparse.Namespace) -> int:
    import pytest

    code = int(pytest.main(_pytest_args(node, args)))
    return code if code in (0, 1, 2) else 2  # pytest's own usage/internal errors


def _run_parallel(nodes: list[str], args: argparse.Namespace) -> int:
    """One process per node: each has its own connection, run directory and pytest session."""
    limit = args.parallel or len(nodes)
    running: list[tuple[str, subprocess.Popen]] = []
    codes: dict[str, int] = {}
    for node in nodes:
        while len(running) >= limit:  # --parallel N: start the next node when one ends
            time.sleep(0.2)
            for entry in [e for e in running if e[1].poll() is not None]:
                running.remove(entry)
                codes[entry[0]] = entry[1].returncode
        argv = [sys.executable, "-m", "qualify", "run", node, *_shared_options(args)]
        argv += ["--checks", args.checks] if args.checks else []
        peers = [n for n in nodes if n != node] + (args.peers.split(",") if getattr(args, "peers", None) else [])
        argv += ["--peers", ",".join(dict.fromkeys(peers))]  # a mesh run: each node's links go to the others
        overlay = getattr(args, "inventory_overlays", {}).get(node)
        argv += ["--overlay", overlay] if overlay else []
        running.append((node, subprocess.Popen(argv)))
    codes.update({node: child.wait() for node, child in running})
    codes = {node: codes[node] for node in nodes}
    for node, code in codes.items():
        print(f"{node}: exit {code} ({ {0: 'pass', 1: 'fail'}.get(code, 'incomplete or error') })", file=sys.stderr)
    return max(codes.values())


def _soak(args: argparse.Namespace) -> int:
    from qualify.report.trend import render_trend
    from qualify.store import reports_dir

    code = _run(args)
    base = Path(args.reports_dir).resolve() if args.reports_dir else reports_dir()
    for node in _node_names(args.nodes):
        if (base / node).is_dir():
            print(f"{node}: nights side by side: {render_trend(base / node)}", file=sys.stderr)
            _export_configured(node, args, base / node)
    return code


def _export_configured(node: str, args: argparse.Namespace, node_dir: Path) -> None:
    """The profile's export.prometheus_textfile ({node} is replaced), written from the newest run."""
    from qualify.export import export_prometheus
    from qualify.overlays import resolve_profile
    from qualify.report.render import find_run_dir

    target = resolve_profile(node, args.profile).profile.export.prometheus_textfile
    if not target:
        return
    try:  # the soak's own verdict and exit status stand even when the export cannot be written
        path = export_prometheus(find_run_dir(node_dir), Path(target.replace("{node}", node)))
        print(f"{node}: Prometheus textfile: {path}", file=sys.stderr)
    except QualifyError as exc:
        print(f"qualify: error: {node}: export.prometheus_textfile: {exc}", file=sys.stderr)


def _nightly(args: argparse.Namespace) -> int:
    from qualify.nightly import install_nightly
    from qualify.options import duration_option

    duration_option(args.duration)
    for path in install_nightly(args.nodes, args.at, args.duration, args.unit_dir):
        print(path)
    return 0


def _report(args: argparse.Namespace) -> int:
    from qualify.report import render_run
    from qualify.report.render import find_run_dir

    path = render_run(find_run_dir(args.run_dir))
    print(path)
    return 0


def _compare(args: argparse.Namespace) -> int:
    from qualify.report.compare import write_comparison
    from qualify.report.render import find_run_dir
    from qualify.store import new_run_id, reports_dir

    run_dirs = [find_run_dir(Path(item)) for arg in args.run_dirs for item in str(arg).split()]
    print(write_comparison(run_dirs, args.output or reports_dir() / f"compare-{new_run_id()}.html"))
    return 0


def _cluster(args: argparse.Namespace) -> int:
    from qualify.cluster.view import ClusterOptions, write_cluster
    from qualify.store import reports_dir

    nodes = _node_names(args.nodes)
    if args.golden:
        check_node_name(args.golden)
    if not 0 < args.tolerance < 10:
        raise UsageError(f"--tolerance {args.tolerance}: expected a share like 0.1 (10 %)")
    if args.run:
        argv = [sys.executable, "-m", "qualify", "run", *nodes]
        argv += ["--reports-dir", args.reports_dir] if args.reports_dir else []
        subprocess.run(argv, check=False)  # a failing node is still compared
    base = Path(args.reports_dir).resolve() if args.reports_dir else reports_dir()
    json_path, html_path = write_cluster(base, nodes, ClusterOptions(args.tolerance, args.golden))
    print(f"{html_path}\n{json_path}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from qualify.export import export_prometheus
    from qualify.report.render import find_run_dir

    run_dir = find_run_dir(args.run_dir)
    print(export_prometheus(run_dir, args.output or run_dir / "qualify.prom"))
    return 0


def _lab(args: argparse.Namespace) -> int:
    from qualify.lab import LabConfig, lab_down, lab_status, lab_up

    config = LabConfig.from_env()
    if args.action == "up":
        lab_up(config)
        print(f"lab is up in {config.lab_dir}: nodes {', '.join(config.nodes)}")
        print(f"  try: ssh -F {config.lab_dir}/ssh_config {config.nodes[0]} uptime")
    elif args.action == "down":
        lab_down(config)
        print("lab is down")
    else:
        state = lab_status(config)
        print(f"lab is up in {config.lab_dir}" if state else "lab is down")
        return 0 if state else 1
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from qualify.node import connect
    from qualify.node.packages import NODE_PACKAGES
    from qualify.overlays import resolve_profile

    loaded = resolve_profile(check_node_name(args.node), args.profile)
    node = connect(args.node, loaded.profile)
    try:
        apt = ["env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
        node.run([*apt, "update", "-q"], timeout_s=600)
        node.run([*apt, "install", "-y", "-q", "--no-install-recommends", *NODE_PACKAGES], timeout_s=1800)
    finally:
        node.close()
    print(f"{args.node}: installed {' '.join(NODE_PACKAGES)}")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from qualify.overlays import resolve_profile

    if args.words[0] == "init" and len(args.words) == 2:
        return _profile_init(args.words[1], args)
    if args.words == ["reference"] and not (args.peers or args.force or args.diff):
        return _profile_reference(args.output)
    if len(args.words) != 1 or args.peers or args.output or args.force or args.diff:
        raise UsageError("usage: qualify profile NODE [--profile F] | qualify profile init NODE [--peers a,b] "
                         "[--output F] [--force] [--diff] | qualify profile reference [--output F]")
    args.node = check_node_name(args.words[0])
    loaded = resolve_profile(args.node, args.profile)
    print(f"# {args.node}: " + " <- ".join(reversed(loaded.sources)))
    print(yaml.safe_dump(loaded.profile.model_dump(mode="json"), sort_keys=False), end="")
    return 0


def _profile_reference(output: Path | None) -> int:
    """Every profile key with type, default, bounds and description (docs/profile-reference.md is this)."""
    from qualify.docs import profile_reference

    text = profile_reference()
    if output:
        output.write_text(text)
        print(output)
    else:
        print(text, end="")
    return 0


def _profile_init(node: str, args: argparse.Namespace) -> int:
    from qualify.discovery.init import init_profile

    peers = [check_node_name(p.strip()) for p in (args.peers or "").split(",") if p.strip()]
    print(init_profile(check_node_name(node), peers, args.output, profile=args.profile, force=args.force,
                       diff=args.diff), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
