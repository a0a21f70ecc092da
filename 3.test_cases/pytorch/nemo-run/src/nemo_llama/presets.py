"""Named presets: which NeMo 2.x recipe (or our own tiny task), on how many nodes.

The Llama 3 presets are the recipes of ``nemo.collections.llm`` as NeMo users call them; the node counts
are where a user starts on p5/p4de (8 GPUs a node). ``tiny`` is our own 2-rank gloo task, for checking
the executors and the launch path on CPU machines.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    recipe: str  # module of nemo.collections.llm (llama3_8b, llama3_70b), or "tiny"
    task: str  # pretrain | finetune | tiny
    nodes: int
    description: str


PRESETS = {
    p.name: p
    for p in (
        Preset("llama3_8b_pretrain", "llama3_8b", "pretrain", 2, "Llama 3 8B pretraining (NeMo recipe)"),
        Preset("llama3_70b_pretrain", "llama3_70b", "pretrain", 8, "Llama 3 70B pretraining (NeMo recipe)"),
        Preset("llama3_8b_finetune", "llama3_8b", "finetune", 1, "Llama 3 8B LoRA fine-tuning (SQuAD)"),
        Preset("llama3_70b_finetune", "llama3_70b", "finetune", 1, "Llama 3 70B LoRA fine-tuning (SQuAD)"),
        Preset("tiny", "tiny", "tiny", 2, "our 2-rank gloo task: checks executors and launch on CPU"),
    )
}


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ValueError naming the choices."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def build_task(
    preset: Preset, name: str, log_dir: str, nodes: int, gpus_per_node: int, max_steps: int | None
):
    """The nemo-run task for ``preset``: NeMo's recipe object (a ``run.Partial``) or our tiny task."""
    import nemo_run as run  # noqa: PLC0415 - imported once the arguments are known to be good

    if preset.task == "tiny":
        from nemo_llama.tiny import train  # noqa: PLC0415

        return run.Partial(train, steps=max_steps or 20, run_dir=log_dir)
    from nemo.collections import llm  # noqa: PLC0415 - a 30 s import, only for the Llama presets

    module = getattr(llm, preset.recipe)
    if preset.task == "pretrain":
        recipe = module.pretrain_recipe(
            name=name, dir=log_dir, num_nodes=nodes, num_gpus_per_node=gpus_per_node
        )
    else:
        recipe = module.finetune_recipe(
            name=name, dir=log_dir, num_nodes=nodes, num_gpus_per_node=gpus_per_node, peft_scheme="lora"
        )
    if max_steps is not None:
        recipe.trainer.max_steps = max_steps
    return recipe
