"""Joint SHISRCNet training with checkpoints, exact resume, early stopping and events.

Output folder: ``last.safetensors`` + ``last-state.safetensors`` (every epoch and on
stop: weights, optimiser, scheduler, RNG, position in the epoch), ``best.safetensors``
(best validation score, never chosen on test), ``metrics.csv`` / ``metrics.json``,
``split.json`` (which patients and images are in which split).
"""

from __future__ import annotations

import csv
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader

from .._version import __version__
from ..data.breakhis import class_names_for, dataset_mpp, index_dataset, labels_for
from ..data.degradations import degradation
from ..data.pairs import PairDataset, StainJitter
from ..engine.inference import resolve_device
from ..engine.runner import CancelToken, RunCancelled
from ..errors import OptionError
from ..model import SHISRCNetLoss, focal_loss, load_checkpoint, save_checkpoint
from . import ddp
from .build import build_model, initialise_all, moving_average, with_init_architecture
from .class_balance import balanced_order, with_class_balance
from .config import TrainConfig
from .decision import check_decision_classes
from .evaluate import decided_on_validation, evaluate_records, selection_score
from .split_binding import bind_split, make_split
from .state import load_training_state, save_training_state


@dataclass
class TrainEvent:
    """What the training loop reports: ``kind`` is started (``notes``: what the weights
    start from), batch, validation (``batch`` of ``batches_per_epoch`` images validated),
    epoch, stopped or done."""

    kind: str
    epoch: int
    step: int
    batch: int = 0
    batches_per_epoch: int = 0
    losses: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    checkpoint: Path | None = None
    notes: tuple[str, ...] = ()  # started: what the weights start from (--init, resume)


TrainCallback = Callable[[TrainEvent], None]


class TrainingStopped(RunCancelled):
    """Raised after a stop request; a resumable checkpoint has been written."""


class Trainer:
    """Train on a BreaKHis-layout (or class-folder) dataset into ``out_dir``."""

    def __init__(
        self,
        data_root: str | Path,
        out_dir: str | Path,
        config: TrainConfig | None = None,
        events: TrainCallback | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        config = with_init_architecture(config or TrainConfig())
        self.config, self.events, self.cancel = config, events, cancel
        self.data_root, self.out_dir = Path(data_root), Path(out_dir)
        self.records = index_dataset(self.data_root, config.magnification)
        # Recorded in the checkpoint: slides are read at hr_mpp * scale (LR).
        self.hr_mpp = config.train_mpp or dataset_mpp(self.records)
        self.class_names = class_names_for(self.records, config.classes)
        self.labels = labels_for(self.records, config.classes)
        check_decision_classes(config.decision, self.class_names, self.data_root)
        self.patients = [r.patient for r in self.records]
        self.split, self.split_record, self.moved_from_test = bind_split(
            config, self.records, make_split(config, self.labels, self.patients), self.data_root
        )
        config = self.config = with_class_balance(
            config, self.labels[self.split.train], len(self.class_names)
        )
        self.rank = ddp.start_process_group()
        self.device = ddp.device_for(self.rank, resolve_device(config.device))
        torch.manual_seed(config.seed)
        self.model = build_model(config, len(self.class_names))
        self.init_notes = initialise_all(self.model, config.init_checkpoints)
        self.model = self.model.to(self.device)
        self.train_model = ddp.wrap(self.model, self.rank, self.device)  # DDP under torchrun
        self.ema = moving_average(self.model, config.ema_decay)
        self.joint_loss = SHISRCNetLoss(config.loss).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(
            self.optimizer, config.lr_decay_every_epochs, gamma=config.lr_decay
        )
        self.train_set = PairDataset(
            [self.records[i].path for i in self.split.train],
            self.labels[self.split.train],
            config.scale,
            config.hr_crop_px,
            seed=config.seed,
            repeats=config.repeats,
            degradation=degradation(config.degradation),
            stain=StainJitter(config.stain_jitter, config.stain_jitter / 2),
        )
        # JSON, saved with the training state.
        self.counters: dict[str, Any] = {
            "epoch": 0,
            "batch": 0,
            "step": 0,
            "best_score": None,
            "best_epoch": None,
            "epochs_without_improvement": 0,
            # The decision rule chosen at the last validation (--decision validation).
            "decision": None,
        }
        self.history: list[dict] = []

    # -- persistence --------------------------------------------------------------------
    def _provenance(self) -> dict:
        return {
            "trainer": f"napari-shisrcnet {__version__}",
            "data_root": str(self.data_root),
            "train_config": self.config.to_dict(),
            "hr_crop_px": self.config.hr_crop_px,
            "hr_mpp": self.hr_mpp,
            "split": self.split_record.to_dict(),  # what evaluate may report on
            "decision": self.counters["decision"],  # class logit offsets, if chosen
            "epoch": self.counters["epoch"],
            "step": self.counters["step"],
            "device": str(self.device),
        }

    @property
    def evaluated_model(self) -> torch.nn.Module:
        """What is validated and saved: the moving average if there is one."""
        return self.model if self.ema is None else self.ema.module

    def _save(self, name: str) -> Path:
        path = self.out_dir / f"{name}.safetensors"
        if not self.rank.is_main:
            return path
        path = save_checkpoint(
            self.evaluated_model,
            self.out_dir / f"{name}.safetensors",
            class_names=self.class_names if self.config.stage != "sr" else None,
            provenance=self._provenance(),
        )
        if name == "last":
            save_training_state(
                self.out_dir / "last-state.safetensors",
                self.optimizer,
                self.scheduler,
                {**self.counters, "history": self.history},
                weights=None if self.ema is None else self.model.state_dict(),
            )
        return path

    def _resume(self) -> None:
        weights = self.out_dir / "last.safetensors"
        model, _ = load_checkpoint(weights)
        self.evaluated_model.load_state_dict(model.state_dict())
        counters, raw_weights = load_training_state(
            self.out_dir / "last-state.safetensors", self.optimizer, self.scheduler
        )
        if bool(raw_weights) != (self.ema is not None):
            raise OptionError(
                f"{self.out_dir} was trained {'with' if raw_weights else 'without'} "
                "a moving average of the weights; resume it the same way",
                "ema_decay",
            )
        if self.ema is not None:
            self.model.load_state_dict(raw_weights)
            self.ema.n_averaged.fill_(counters["step"])
        self.history = counters.pop("history")
        self.counters = {"decision": None, **counters}  # states saved before --decision

    def _write_split(self) -> None:
        if not self.rank.is_main:
            return
        record = self.split_record.to_dict()
        split: dict[str, Any] = {**record.pop("patients"), "leaky": self.split.leaky, **record}
        split["images"] = {
            name: [str(self.records[i].path.name) for i in self.split.named(name)]
            for name in ("train", "val", "test")
        }
        (self.out_dir / "split.json").write_text(json.dumps(split, indent=1))

    def _write_metrics(self) -> None:
        if not self.rank.is_main:
            return
        (self.out_dir / "metrics.json").write_text(json.dumps(self.history, indent=1))
        flat = [
            {k: v for k, v in row.items() if not isinstance(v, dict | list)} for row in self.history
        ]
        names = sorted({k for row in flat for k in row})
        with open(self.out_dir / "metrics.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            writer.writerows(flat)

    # -- training -------------------------------------------------------------------------
    def _loss(self, lr, hr, targets) -> dict[str, torch.Tensor]:
        stage = self.config.stage
        if stage == "sr":
            l1 = F.l1_loss(self.train_model(lr), hr)
            return {"total": l1, "l1": l1}
        if stage == "classifier":
            logits, _ = self.train_model(hr)
            focal = focal_loss(
                logits, targets, self.config.loss.focal_gamma, self.joint_loss.focal_alpha
            )
            return {"total": focal, "focal": focal}
        return self.joint_loss(self.train_model(lr, hr), hr, targets)._asdict()

    def _epoch_order(self, epoch: int) -> list[int]:
        generator = np.random.default_rng([self.config.seed, epoch, 7])
        if self.config.class_balance == "sampler":
            labels = np.asarray(self.train_set.labels)
            return balanced_order(labels[np.arange(len(self.train_set)) % len(labels)], generator)
        return generator.permutation(len(self.train_set)).tolist()

    def _autocast(self):
        if self.device.type == "cuda" and self.config.amp:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return torch.autocast("cpu", enabled=False)

    def _run_epoch(self, epoch: int) -> dict[str, float]:
        config = self.config
        self.train_set.set_epoch(epoch)
        order = self._epoch_order(epoch)
        batch_size = config.batch_size
        batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
        batches = [b for b in batches if len(b) == batch_size] or batches[:1]  # whole batches
        batches = ddp.share(batches, self.rank)
        start = self.counters["batch"]
        # Its own generator: creating a loader must not draw from the global RNG, or a
        # resumed run (which creates it at another moment) would see other dropout masks.
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        loader = DataLoader(
            self.train_set,
            batch_sampler=batches[start:],
            num_workers=config.workers,
            generator=generator,
        )
        sums: dict[str, float] = {}
        self.model.train()
        for offset, (lr, hr, targets) in enumerate(loader):
            lr, hr, targets = lr.to(self.device), hr.to(self.device), targets.to(self.device)
            with self._autocast():
                losses = self._loss(lr, hr, targets)
            self.optimizer.zero_grad(set_to_none=True)
            losses["total"].backward()
            self.optimizer.step()
            if self.ema is not None:
                self.ema.update_parameters(self.model)
            values = {k: float(v.detach()) for k, v in losses.items()}
            for k, v in values.items():
                sums[k] = sums.get(k, 0.0) + v
            self.counters["batch"] = start + offset + 1
            self.counters["step"] += 1
            self._emit(
                TrainEvent(
                    "batch",
                    epoch,
                    self.counters["step"],
                    self.counters["batch"],
                    len(batches),
                    values,
                )
            )
            if self.cancel is not None and self.cancel.cancelled:
                path = self._save("last")
                self._emit(TrainEvent("stopped", epoch, self.counters["step"], checkpoint=path))
                raise TrainingStopped(
                    f"stopped at epoch {epoch}, step {self.counters['step']}; "
                    f"resume from {self.out_dir}"
                )
            if config.max_steps is not None and self.counters["step"] >= config.max_steps:
                break
        n = max(1, self.counters["batch"] - start)
        return {f"train_{k}": v / n for k, v in sums.items()}

    def _out_of_steps(self) -> bool:
        return self.config.max_steps is not None and self.counters["step"] >= self.config.max_steps

    def _end_epoch(self, row: dict) -> None:
        """Record the epoch; on a validated epoch, keep the best and count patience (in
        validations, so ``val_every`` does not stretch it)."""
        improved = False
        if "val_score" in row:
            best = self.counters["best_score"]
            improved = best is None or row["val_score"] > best
            if improved:
                self.counters.update(
                    best_score=row["val_score"],
                    best_epoch=row["epoch"],
                    epochs_without_improvement=0,
                )
            else:
                self.counters["epochs_without_improvement"] += 1
        self.history.append(row)
        path = self._save("last")
        if improved:
            self._save("best")
        self._write_metrics()
        self._emit(
            TrainEvent("epoch", row["epoch"], self.counters["step"], metrics=row, checkpoint=path)
        )

    def _emit(self, event: TrainEvent) -> None:
        if self.events is not None and self.rank.is_main:
            self.events(event)

    def _validate(self) -> dict:
        records = [self.records[i] for i in self.split.val]
        labels = self.labels[self.split.val]
        epoch, step = self.counters["epoch"], self.counters["step"]

        def progress(done: int, total: int) -> None:  # validation takes minutes on a CPU
            self._emit(TrainEvent("validation", epoch, step, batch=done, batches_per_epoch=total))

        chooses = self.config.decision == "validation"
        metrics = evaluate_records(
            self.evaluated_model,
            records,
            labels,
            self.class_names,
            self.config,
            device=self.device,
            progress=progress,
            keep_tile_logits=chooses,
        )
        if chooses:
            metrics, self.counters["decision"] = decided_on_validation(
                metrics, records, labels, self.class_names
            )
        return metrics

    def start_notes(self, resume: bool) -> list[str]:
        """What the weights start from, for the log: what each --init did, or, when
        resuming, the saved state that replaces them."""
        return [f"resuming from {self.out_dir}"] if resume else list(self.init_notes)

    def run(self, resume: bool = False) -> dict:
        """Train until ``epochs``, ``max_steps`` or early stopping; return the last metrics."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        if resume:
            self._resume()
        counters = self.counters
        notes = tuple(self.start_notes(resume))
        self._emit(TrainEvent("started", counters["epoch"], counters["step"], notes=notes))
        self._write_split()
        config = self.config
        while self.counters["epoch"] < config.epochs:
            epoch = self.counters["epoch"]
            started = time.perf_counter()
            row = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
            # --max-steps 0 trains nothing: it validates and saves the initial weights.
            if not self._out_of_steps():
                row.update(self._run_epoch(epoch))
                self.scheduler.step()
            last = epoch + 1 == config.epochs or self._out_of_steps()
            if last or (epoch + 1) % config.val_every == 0:
                validation_started = time.perf_counter()
                row.update(self._validate())
                row["val_seconds"] = round(time.perf_counter() - validation_started, 2)
                row["val_score"] = selection_score(row, config.stage)
            row["seconds"] = round(time.perf_counter() - started, 2)
            self.counters.update(epoch=epoch + 1, batch=0)
            self._end_epoch(row)
            patience = config.early_stopping_patience
            if self._out_of_steps() or (
                patience and self.counters["epochs_without_improvement"] >= patience
            ):
                break
        ddp.finish(self.rank)
        self._emit(
            TrainEvent(
                "done",
                self.counters["epoch"],
                self.counters["step"],
                metrics=self.history[-1] if self.history else {},
                checkpoint=self.out_dir / "best.safetensors",
            )
        )
        return self.history[-1] if self.history else {}
