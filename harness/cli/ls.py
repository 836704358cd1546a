"""``harness ls``: what the registries hold."""

from __future__ import annotations

from harness.core.errors import HarnessError

KINDS = ("tasks", "trainers", "judges", "backends", "principles", "filters", "verifiers")


def register(subparsers) -> None:
    parser = subparsers.add_parser("ls", help="list tasks, trainers, judges, backends, principles, filters or verifiers")
    parser.add_argument("kind", choices=KINDS, help="what to list")
    parser.set_defaults(func=run)


def entries(kind: str) -> list[tuple[str, str]]:
    if kind == "tasks":
        from harness.tasks import tasks as registry
    elif kind == "trainers":
        from harness.flow.train import trainers as registry
    elif kind == "backends":
        from harness.models.backends import backends as registry
    elif kind == "filters":
        from harness.flow.filters import filters as registry
    elif kind == "verifiers":
        from harness.verifiers import OMITTED_IFEVAL, verifiers as registry

        omitted = [(f"({name})", f"left out: {why}") for name, why in OMITTED_IFEVAL.items()]
        return registry.describe() + omitted
    elif kind == "judges":
        try:
            from harness.judging import judges as registry
        except ImportError as exc:
            raise HarnessError(f"judges are not available: {exc}") from None
    else:
        from harness.tasks.principles import available_principle_files, load_principles

        return [(f"{task}/{path.name}", f"{load_principles(path).task}: "
                 f"{', '.join(p.name for p in load_principles(path).principles)}")
                for task, path in available_principle_files().items()]
    return registry.describe()


def run(args) -> int:
    rows = entries(args.kind)
    width = max((len(name) for name, _ in rows), default=0)
    for name, description in rows:
        print(f"{name:<{width}}  {description}")
    return 0
