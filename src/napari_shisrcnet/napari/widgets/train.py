"""The "Train" dock widget: train or fine-tune SHISRCNet from napari.

The form is built from ``TrainConfig``'s defaults (one copy of the defaults). Training
runs in a napari worker; Stop saves a resumable checkpoint; a live plot shows the
training loss and validation PSNR gain / accuracy; "Use this model" hands the best
checkpoint to the Super-resolve and Classify tiles widgets.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import napari
from magicgui.types import FileDialogMode
from magicgui.widgets import (
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    ProgressBar,
    PushButton,
    SpinBox,
)
from napari.utils.notifications import show_error, show_info

from ...geometry import SUPPORTED_SCALES
from ...train.class_balance import CLASS_BALANCE
from ...train.config import STAGES, TrainConfig
from ...train.decision import DECISION_RULES
from ..job_state import JobRunner, JobStatus, RunsJobs
from ..model_handover import MODEL_HANDOVER
from .choices import CHECKPOINT_CHOICE, device_choices
from .fields import precise_float
from .scrolling import ScrollsInDock

#: The degradations the widget offers (any mixture works from the command line).
DEGRADATION_CHOICES = ("bicubic", "scanner", "realistic", "scanner+bicubic")
#: Where training starts: random weights, or fine-tuning (--init) a checkpoint.
RANDOM_WEIGHTS, BUNDLED_MODEL = "random weights", "bundled model (this scale)"
#: The loss plot never shrinks below this (two axes with labels stay legible).
MIN_PLOT_HEIGHT_PX = 260


class LossPlot:
    """A small matplotlib canvas: training loss per batch, validation metrics per epoch."""

    def __init__(self) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 2.6), layout="constrained")
        self.canvas = FigureCanvasQTAgg(self.figure)
        # Readable however many docks share the column: the dock scrolls instead.
        self.canvas.setMinimumHeight(MIN_PLOT_HEIGHT_PX)
        self.loss_axis = self.figure.add_subplot(211)
        self.val_axis = self.figure.add_subplot(212)
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.epochs: list[int] = []
        self.psnr_gain: list[float] = []
        self.accuracy: list[float] = []

    def add_batch(self, step: int, loss: float) -> None:
        self.steps.append(step)
        self.losses.append(loss)

    def add_epoch(self, epoch: int, metrics: dict) -> None:
        self.epochs.append(epoch)
        gain = metrics.get("psnr", float("nan")) - metrics.get("psnr_bicubic", float("nan"))
        self.psnr_gain.append(gain)
        self.accuracy.append(metrics.get("accuracy_image", float("nan")))
        self.draw()

    def draw(self) -> None:
        self.loss_axis.clear()
        self.loss_axis.plot(self.steps, self.losses, lw=0.8)
        self.loss_axis.set_ylabel("train loss")
        self.val_axis.clear()
        self.val_axis.plot(self.epochs, self.psnr_gain, "o-", label="val PSNR gain (dB)")
        self.val_axis.plot(self.epochs, self.accuracy, "s-", label="val accuracy")
        self.val_axis.set_xlabel("epoch")
        self.val_axis.legend(fontsize=7)
        self.canvas.draw_idle()


class TrainWidget(ScrollsInDock, RunsJobs, Container):
    """Train SHISRCNet on a BreaKHis-layout folder (or class sub-folders)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)  # scrolls (ScrollsInDock): keeps the plot legible
        self.viewer = viewer
        self.runner = JobRunner(
            cancelled_message="stopped; press Resume to continue (a resumable checkpoint was saved)"
        )
        self.best: Path | None = None
        self.extend([*self._form(TrainConfig()), *self._controls(TrainConfig())])
        self.plot = LossPlot()
        self.native.widget().layout().addWidget(self.plot.canvas)  # the form in the scroll area
        self._attach_runner(self.runner)

    def _form(self, defaults: TrainConfig) -> list:
        """One field per TrainConfig setting the widget offers, with its defaults."""
        self.data_root = FileEdit(label="data folder", mode=FileDialogMode.EXISTING_DIRECTORY)
        self.out_dir = FileEdit(label="output folder", mode=FileDialogMode.EXISTING_DIRECTORY)
        self.scale = ComboBox(label="scale", choices=list(SUPPORTED_SCALES), value=defaults.scale)
        self.classes = ComboBox(
            label="classes", choices=["binary", "subtype"], value=defaults.classes
        )
        self.stage = ComboBox(label="stage", choices=list(STAGES), value=defaults.stage)
        self.folds = SpinBox(label="folds (1 = one split)", min=1, max=10, value=defaults.folds)
        self.fold = SpinBox(label="fold", min=0, max=9, value=defaults.fold)
        self.epochs = SpinBox(label="epochs", min=1, max=10_000, value=defaults.epochs)
        self.batch_size = SpinBox(label="batch size", min=1, max=512, value=defaults.batch_size)
        self.lr = precise_float(
            6, label="learning rate", min=1e-6, max=1.0, step=1e-4, value=defaults.lr
        )
        self.hr_crop_px = SpinBox(label="HR crop (px)", min=32, max=2048, value=defaults.hr_crop_px)
        self.sr_channels = SpinBox(
            label="SR channels", min=4, max=256, value=defaults.architecture("sr_channels")
        )
        self.classifier_width = precise_float(
            4,
            label="classifier width",
            min=0.05,
            max=2.0,
            step=0.05,
            value=defaults.architecture("classifier_width"),
        )
        start = self._start_fields()
        recipe = self._recipe_fields(defaults)
        self.device = ComboBox(label="device", choices=[("auto", "auto"), *device_choices()])
        return [
            self.data_root,
            self.out_dir,
            *start,
            self.scale,
            self.classes,
            self.stage,
            self.folds,
            self.fold,
            self.epochs,
            self.batch_size,
            self.lr,
            self.hr_crop_px,
            self.sr_channels,
            self.classifier_width,
            *recipe,
            self.device,
        ]

    def _start_fields(self) -> list:
        """Random weights, or fine-tune the bundled model or a checkpoint file (--init)."""
        self.start_from = ComboBox(
            label="start from",
            choices=[RANDOM_WEIGHTS, *_bundled_choice(), CHECKPOINT_CHOICE],
            value=RANDOM_WEIGHTS,
            tooltip="fine-tuning takes the checkpoint's SR channels, MFE blocks, fusion and "
            "classifier width; more SR channels than it has grow its SR module",
        )
        self.init_file = FileEdit(
            label="start checkpoint", filter="*.safetensors", visible=False, nullable=True
        )
        self.start_from.changed.connect(lambda _: self._show_start())
        self.init_file.changed.connect(lambda _: self._take_start_architecture())
        self.scale.changed.connect(lambda _: self._take_start_architecture())
        return [self.start_from, self.init_file]

    def _show_start(self) -> None:
        self.init_file.visible = self.start_from.value == CHECKPOINT_CHOICE
        self._take_start_architecture()

    def init_checkpoints(self) -> tuple[str, ...]:
        """The form's --init: none, the bundled model of its scale, or the chosen file."""
        if self.start_from.value == BUNDLED_MODEL:
            return ("default",)
        if self.start_from.value == CHECKPOINT_CHOICE:
            if self.init_file.value is None or str(self.init_file.value) in ("", "."):
                raise ValueError("choose the checkpoint to start from")
            return (str(self.init_file.value),)
        return ()

    def _take_start_architecture(self) -> None:
        """Show the widths of the checkpoint to fine-tune (a header read: a few KB)."""
        from ...model.bundled import bundled_name
        from ...train.build import init_architecture

        try:
            scale = int(self.scale.value)
            found = init_architecture([bundled_name(c, scale) for c in self.init_checkpoints()])
        except (ValueError, LookupError, OSError):
            return  # no or a bad checkpoint: Start will say why
        self.sr_channels.value = found.get("sr_channels", self.sr_channels.value)
        self.classifier_width.value = found.get("classifier_width", self.classifier_width.value)

    def _recipe_fields(self, defaults: TrainConfig) -> list:
        """How pairs are made and how the classifier copes with imbalanced classes."""
        self.degradation = ComboBox(
            label="LR made by",
            choices=list(DEGRADATION_CHOICES),
            value=defaults.degradation,
            tooltip="bicubic: the paper's; scanner: like a slide pyramid's levels (box average, "
            "JPEG); scanner+bicubic: half each, what the bundled models use (docs/training.md)",
        )
        self.class_balance = ComboBox(
            label="class balance", choices=list(CLASS_BALANCE), value=defaults.class_balance
        )
        self.stain_jitter = FloatSpinBox(
            label="stain jitter", min=0.0, max=0.5, step=0.05, value=defaults.stain_jitter
        )
        self.decision = ComboBox(
            label="decision",
            choices=list(DECISION_RULES),
            value=defaults.decision,
            tooltip="argmax: the paper's; validation: the benign/malignant threshold that "
            "balances the classes on the validation images, kept with the model",
        )
        # What validation costs (docs/training.md): minutes per epoch on a CPU otherwise.
        self.val_crop_px = SpinBox(
            label="validate on (px, 0 = whole)",
            min=0,
            max=4096,
            step=32,
            value=defaults.val_crop_px or 0,
            tooltip="validate on the fixed centre crop of this size of each image (0: whole "
            "images); 256 px costs about a fifth of a 700 x 460 image",
        )
        self.val_every = SpinBox(
            label="validate every (epochs)", min=1, max=1000, value=defaults.val_every
        )
        return [
            self.degradation,
            self.class_balance,
            self.stain_jitter,
            self.decision,
            self.val_crop_px,
            self.val_every,
        ]

    def _controls(self, defaults: TrainConfig) -> list:
        self.start_button = PushButton(text="Start")
        self.resume_button = PushButton(text="Resume")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.use_button = PushButton(text="Use this model", enabled=False)
        self.epoch_bar = ProgressBar(label="epochs", min=0, max=defaults.epochs, value=0)
        self.batch_bar = ProgressBar(label="batches", min=0, max=1, value=0)
        self.status = Label(label="status", value="idle")
        self.checkpoint = Label(label="checkpoint", value="")
        self.started_from = Label(label="started from", value="")
        self.start_button.changed.connect(lambda _: self.start(resume=False))
        self.resume_button.changed.connect(lambda _: self.start(resume=True))
        self.stop_button.changed.connect(self.stop)
        self.use_button.changed.connect(self.use_model)
        return [
            self.start_button,
            self.resume_button,
            self.stop_button,
            self.epoch_bar,
            self.batch_bar,
            self.status,
            self.started_from,
            self.checkpoint,
            self.use_button,
        ]

    def config(self) -> TrainConfig:
        return replace(
            TrainConfig(),
            scale=int(self.scale.value),
            classes=self.classes.value,
            stage=self.stage.value,
            folds=int(self.folds.value),
            fold=int(self.fold.value),
            epochs=int(self.epochs.value),
            batch_size=int(self.batch_size.value),
            lr=float(self.lr.value),
            hr_crop_px=int(self.hr_crop_px.value),
            sr_channels=int(self.sr_channels.value),
            classifier_width=float(self.classifier_width.value),
            init_checkpoints=self.init_checkpoints(),
            degradation=self.degradation.value,
            class_balance=self.class_balance.value,
            stain_jitter=float(self.stain_jitter.value),
            decision=self.decision.value,
            val_crop_px=int(self.val_crop_px.value) or None,
            val_every=int(self.val_every.value),
            device=self.device.value,
        )

    def _folders(self, resume: bool) -> tuple[Path, Path]:
        data_root, out_dir = Path(str(self.data_root.value)), Path(str(self.out_dir.value))
        if str(self.out_dir.value) in ("", "."):
            raise ValueError("choose an output folder")
        if resume and not (out_dir / "last-state.safetensors").exists():
            raise ValueError(f"{out_dir} holds no resumable training state")
        return data_root, out_dir

    def start(self, resume: bool = False) -> None:
        """Train (or resume training) with the form's settings."""
        if self.runner.state.status.busy:
            return
        try:  # the form, read here (never in the worker thread)
            (data_root, out_dir), config = self._folders(resume), self.config()
        except (ValueError, LookupError, OSError) as error:
            self.runner.fail(error)
            return

        def job(report, cancel):
            from ...train.loop import Trainer

            # In the worker: indexing the data and loading --init weights take seconds.
            trainer = Trainer(data_root, out_dir, config, report, cancel)
            trainer.run(resume=resume)
            return trainer.out_dir / "best.safetensors"

        self.epoch_bar.max = config.epochs
        self.started_from.value = ""
        self.runner.start(job, self._on_event, self._on_trained, "training…")

    def stop(self, _=None) -> None:
        self.runner.cancel("stopping after this batch (a resumable checkpoint is saved)…")

    def _on_event(self, event) -> None:
        if event.kind == "started":
            self.started_from.value = "; ".join(event.notes) or "random weights"
        elif event.kind == "batch":
            self.batch_bar.max = max(1, event.batches_per_epoch)
            self.batch_bar.value = event.batch
            self.plot.add_batch(event.step, event.losses.get("total", float("nan")))
            self.runner.state.message = (
                f"epoch {event.epoch + 1}, batch {event.batch}/{event.batches_per_epoch}"
            )
        elif event.kind == "validation":
            self.batch_bar.max = max(1, event.batches_per_epoch)
            self.batch_bar.value = event.batch
            done, total = event.batch, event.batches_per_epoch
            self.runner.state.message = f"epoch {event.epoch + 1}: validating, {done}/{total}"
        elif event.kind == "epoch":
            self.epoch_bar.value = min(event.epoch, self.epoch_bar.max)
            self.plot.add_epoch(event.epoch, event.metrics)
            self.checkpoint.value = str(event.checkpoint)

    def _on_trained(self, best: Path) -> None:
        self.best = best
        self.checkpoint.value = str(best)
        self.use_button.enabled = best.exists()

    def _on_status(self, status: JobStatus) -> None:
        self.start_button.enabled = self.resume_button.enabled = not status.busy
        self.stop_button.enabled = status is JobStatus.RUNNING
        if status is JobStatus.CANCELLED:
            show_info(f"SHISRCNet training: {self.runner.state.message}")
        elif status is JobStatus.FAILED:
            show_error(f"SHISRCNet training: {self.runner.state.message.removeprefix('error: ')}")

    def use_model(self, _=None) -> None:
        """Point the Super-resolve and Classify tiles widgets at the best checkpoint."""
        if self.best is not None:
            MODEL_HANDOVER.chosen.emit(str(self.best))


def _bundled_choice() -> list[str]:
    """The bundled-model choice, when this installation has bundled weights."""
    from ...model.bundled import installed_models

    return [BUNDLED_MODEL] if installed_models() else []
