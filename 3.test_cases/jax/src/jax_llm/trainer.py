"""The Trainer: build the sharded state, restore, step, log, checkpoint, summarise.

One ``jax.jit``-compiled step takes the whole train state and a global batch, both laid out on the
(data, model) mesh; every process runs the same program on its own devices (SPMD) and feeds only its
own rows of the batch. The loss stays on the devices between log steps.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import time

import jax
import jax.numpy as jnp
import optax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jax_llm.checkpoint import Checkpoints
from jax_llm.config import Config, ConfigError, validate_world
from jax_llm.data import Batches, DataError, load_tokens
from jax_llm.model import Transformer, flops_per_token, parameter_count
from jax_llm.parallel import (
    ProcessInfo,
    batch_sharding,
    make_mesh,
    process_info,
    replica_digest,
    setup_distributed,
    shardings,
)
from jax_llm.runlog import RunLog, device_peak_tflops, memory_gib

USER_ERRORS = (ConfigError, DataError)


def learning_rate(config: Config):
    """Linear warm-up, then cosine decay to a tenth of the peak at max_steps."""
    t = config.training

    def schedule(step):
        warm = jnp.minimum(1.0, (step + 1) / max(t.warmup_steps, 1))
        progress = jnp.clip((step - t.warmup_steps) / max(t.max_steps - t.warmup_steps, 1), 0.0, 1.0)
        return t.lr * warm * (0.1 + 0.45 * (1 + jnp.cos(jnp.pi * progress)))

    return schedule


class Trainer:
    def __init__(self, config: Config, info: ProcessInfo):
        self.config, self.info, t = config, info, config.training
        validate_world(config, jax.device_count(), jax.process_count())
        self.mesh = make_mesh(t.model_parallel)
        self.model = Transformer(config.arch, jnp.dtype(t.dtype), t.remat)
        self.schedule = learning_rate(config)
        self.optimizer = optax.chain(
            optax.clip_by_global_norm(t.grad_clip),
            optax.adamw(self.schedule, b1=0.9, b2=0.95, weight_decay=t.weight_decay),
        )
        self.state_sharding = shardings(self.mesh, jax.eval_shape(self.init_state))
        self.state = jax.jit(self.init_state, out_shardings=self.state_sharding)()
        self.batch_sharding = batch_sharding(self.mesh)
        self.batch_shape = (t.global_batch, t.seq_len + 1)
        rows = [s[0] for s in self.batch_sharding.addressable_devices_indices_map(self.batch_shape).values()]
        first, last = min(r.start or 0 for r in rows), max(r.stop or t.global_batch for r in rows)
        tokens = load_tokens(config.data_path, config.arch.vocab_size)
        self.batches = Batches(tokens, t.seq_len, t.global_batch, config.seed, first, last - first)
        replicated = NamedSharding(self.mesh, P())
        step = jax.jit(
            self.train_step,
            in_shardings=(self.state_sharding, self.batch_sharding),
            out_shardings=(self.state_sharding, replicated, replicated),
            donate_argnums=0,
        )
        started = time.perf_counter()
        self.step_fn = step.lower(self.state, self.global_batch(0)).compile()
        self.compile_s = time.perf_counter() - started
        self.log = RunLog(config.run_path, info.process_id)
        self.checkpoints = Checkpoints(config.run_path / "checkpoints", t.keep_checkpoints)
        self.params = parameter_count(self.state["params"])

    def init_state(self) -> dict:
        tokens = jnp.zeros((1, self.config.training.seq_len), jnp.int32)
        params = self.model.init(jax.random.key(self.config.seed), tokens)["params"]
        return {"params": params, "opt_state": self.optimizer.init(params)}

    def train_step(self, state: dict, batch):
        inputs, targets = batch[:, :-1], batch[:, 1:]

        def loss_fn(params):
            logits = self.model.apply({"params": params}, inputs)
            return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state["params"])
        updates, opt_state = self.optimizer.update(grads, state["opt_state"], state["params"])
        params = optax.apply_updates(state["params"], updates)
        return {"params": params, "opt_state": opt_state}, loss, optax.global_norm(grads)

    def global_batch(self, step: int):
        """The global batch of ``step`` as one array; this process supplies only its rows."""
        local = self.batches.batch(step)
        return jax.make_array_from_process_local_data(self.batch_sharding, local, self.batch_shape)

    def restore(self) -> int:
        """Load the newest finished checkpoint, if any; return the number of steps already done."""
        step = self.checkpoints.latest_step()
        if step is None:
            return 0
        self.state, record = self.checkpoints.restore(step, self.state)
        if record["arch"] != self.config.to_dict()["arch"]:
            raise ConfigError(
                f"the checkpoint at step {step} in {self.config.run_dir} has another architecture; "
                "use a new --run-dir or the same preset and shape flags"
            )
        self.log.event("resume", step=step, restart=self.info.restart)
        self.log.say(f"resumed from step {step} ({self.config.run_dir}/checkpoints)")
        return step

    def save(self, step: int) -> None:
        record = {"step": step, "samples": step * self.config.training.global_batch, **self.config.to_dict()}
        self.checkpoints.save(step, self.state, record)
        self.log.event("checkpoint", step=step)

    def maybe_kill(self, step: int) -> None:
        """The fault drill: this process dies at ``step`` on the job's first attempt, once the checkpoints
        already started are on disk (so the step it resumes from is known)."""
        drill = self.config.fault_kill_at_step
        if drill and self.info.restart == 0 and drill == f"{self.info.process_id}:{step}":
            self.checkpoints.manager.wait_until_finished()
            print(
                f"fault drill: process {self.info.process_id} killed at step {step}",
                file=sys.stderr,
                flush=True,
            )
            os.kill(os.getpid(), signal.SIGKILL)

    def run(self) -> dict:
        t, arch = self.config.training, self.config.arch
        peak, peak_source = device_peak_tflops()
        flops = flops_per_token(arch, t.seq_len)
        devices = jax.device_count()
        self.log.write("config.json", self.config.to_dict())
        start = self.restore()
        mesh = dict(self.mesh.shape)
        self.log.event(
            "start",
            step=start,
            processes=jax.process_count(),
            devices=devices,
            mesh=mesh,
            params=self.params,
            compile_s=self.compile_s,
            peak_tflops=peak,
            peak_source=peak_source,
        )
        self.log.say(
            f"{self.config.preset}: {self.params / 1e6:.2f} M parameters, {jax.process_count()} processes, "
            f"{devices} devices, mesh {mesh}, peak {peak:.3f} TFLOP/s/device ({peak_source})"
        )
        first_loss = loss = None
        clock, since = time.perf_counter(), 0
        for step in range(start, t.max_steps):
            self.state, loss_array, grad_norm = self.step_fn(self.state, self.global_batch(step))
            done, since = step + 1, since + 1
            self.maybe_kill(done)
            if done % t.log_every == 0 or done == t.max_steps:
                loss = float(loss_array)  # waits for the step: the timing below is of finished work
                first_loss = loss if first_loss is None else first_loss
                step_time = (time.perf_counter() - clock) / since
                per_device = t.global_batch * t.seq_len / step_time / devices
                tflops = per_device * flops / 1e12
                record = {
                    "step": done,
                    "loss": loss,
                    "lr": float(self.schedule(step)),
                    "grad_norm": float(grad_norm),
                    "tokens_per_s": per_device,
                    "tflops": tflops,
                    "mfu_pct": 100 * tflops / peak,
                    "mem_gib": memory_gib(),
                    "step_time_s": step_time,
                }
                self.log.record(record)
                self.log.say(
                    f"step {done:>5} | loss {loss:.4f} | {per_device:,.0f} tokens/s/device | "
                    f"{tflops:.3f} TFLOP/s | mfu {record['mfu_pct']:.1f}% | {step_time * 1e3:.1f} ms"
                )
                clock, since = time.perf_counter(), 0
            if done % t.checkpoint_every == 0 or done == t.max_steps:
                saving = time.perf_counter()
                self.save(done)
                clock += time.perf_counter() - saving  # throughput counts training steps only
        return self.summary(start, first_loss, loss)

    def summary(self, start: int, first_loss: float | None, loss: float | None) -> dict:
        self.checkpoints.close()
        records = [r for r in self.log.records() if "loss" in r]
        steady = [r for r in records if r["step"] > start][1:] or records[-1:]
        mean = (lambda key: sum(r[key] for r in steady) / len(steady)) if steady else (lambda key: math.nan)
        result = {
            "preset": self.config.preset,
            "step": self.config.training.max_steps,
            "resumed_from": start,
            "first_loss": first_loss,
            "final_loss": loss,
            "params": self.params,
            "processes": jax.process_count(),
            "devices": jax.device_count(),
            "mesh": dict(self.mesh.shape),
            "tokens_per_s": mean("tokens_per_s"),
            "mfu_pct": mean("mfu_pct"),
            "compile_s": self.compile_s,
        }
        self.log.event("summary", **result)
        self.log.write("result.json", result)
        ranks = {
            **self.info.to_dict(),
            "devices": [str(d) for d in jax.local_devices()],
            "params_digest": replica_digest(self.state["params"]),
            "final_loss": loss,
        }
        RunLog(self.config.run_path, 0).write(f"ranks/rank{self.info.process_id}.json", ranks)
        if loss is not None:
            self.log.say(
                f"summary: step {result['step']} | loss {first_loss:.4f} -> {loss:.4f} | "
                f"{result['tokens_per_s']:,.0f} tokens/s/device | mfu {result['mfu_pct']:.1f}%"
            )
        return result


def train(config: Config) -> dict:
    info = process_info()
    setup_distributed(info, config.training.cpu_devices)
    return Trainer(config, info).run()
