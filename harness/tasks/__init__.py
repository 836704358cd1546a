"""Task registry: ``tldr``, ``dialogue``, ``heldout``."""

from harness.core.registry import Registry
from harness.tasks.base import Task
from harness.tasks.dialogue.task import DialogueTask
from harness.tasks.heldout.task import HeldoutTask
from harness.tasks.tldr.task import TldrTask

tasks: Registry[type[Task]] = Registry("task")
tasks.add("tldr", TldrTask, TldrTask.description)
tasks.add("dialogue", DialogueTask, DialogueTask.description)
tasks.add("heldout", HeldoutTask, HeldoutTask.description)


def get_task(name: str) -> Task:
    return tasks.get(name)()


__all__ = ["Task", "tasks", "get_task"]
