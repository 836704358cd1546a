"""Task registry: ``tldr``, ``dialogue``, ``heldout``."""

from harness.registry import Registry
from harness.tasks.base import Task
from harness.tasks.dialogue import DialogueTask
from harness.tasks.heldout import HeldoutTask
from harness.tasks.tldr import TldrTask

tasks: Registry[type[Task]] = Registry("task")
tasks.add("tldr", TldrTask, TldrTask.description)
tasks.add("dialogue", DialogueTask, DialogueTask.description)
tasks.add("heldout", HeldoutTask, HeldoutTask.description)


def get_task(name: str) -> Task:
    return tasks.get(name)()


__all__ = ["Task", "tasks", "get_task"]
