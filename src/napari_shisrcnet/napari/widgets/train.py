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

from ...train.config import STAGES, TrainConfig
from ..workers import CANCELLED, progress_generator, start_job
from .common import CHECKPOINT_CHOICE, LIVE_JOB_WIDGETS, device_choices


class LossPlot:
    """A small matplotlib canvas: training loss per batch, validation metrics per epoch."""

    def __init__(self) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(4, 2.6), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.loss_axis = self.figure.add_subplot(211)
        self.val_axis = self.figure.add_subplot(212)
        self.steps, self.losses, self.epochs = [], [], []
        self.psnr_gain, self.accuracy = [], []

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


class TrainWidget(Container):
    """Train SHISRCNet on a BreaKHis-layout folder (or class sub-folders)."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.synchronous = False
        defaults = TrainConfig()
        self.data_root = FileEdit(label="data folder", mode="d")
        self.out_dir = FileEdit(label="output folder", mode="d")
        self.scale = ComboBox(label="scale", choices=[2, 4, 8], value=defaults.scale)
        self.classes = ComboBox(
            label="classes", choices=["binary", "subtype"], value=defaults.classes
        )
        self.stage = ComboBox(label="stage", choices=list(STAGES), value=defaults.stage)
        self.folds = SpinBox(label="folds (1 = one split)", min=1, max=10, value=defaults.folds)
        self.fold = SpinBox(label="fold", min=0, max=9, value=defaults.fold)
        self.epochs = SpinBox(label="epochs", min=1, max=10_000, value=defaults.epochs)
        self.batch_size = SpinBox(label="batch size", min=1, max=512, value=defaults.batch_size)
        self.lr = FloatSpinBox(
            label="learning rate", min=1e-6, max=1.0, step=1e-4, value=defaults.lr
        )
        self.hr_crop_px = SpinBox(label="HR crop (px)", min=32, max=2048, value=defaults.hr_crop_px)
        self.sr_channels = SpinBox(label="SR channels", min=4, max=256, value=defaults.sr_channels)
        self.classifier_width = FloatSpinBox(
            label="classifier width", min=0.05, max=2.0, step=0.05, value=defaults.classifier_width
        )
        self.device = ComboBox(label="device", choices=[("auto", "auto"), *device_choices()])
        self.start_button = PushButton(text="Start")
        self.resume_button = PushButton(text="Resume")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.use_button = PushButton(text="Use this model", enabled=False)
        self.epoch_bar = ProgressBar(label="epochs", min=0, max=defaults.epochs, value=0)
        self.batch_bar = ProgressBar(label="batches", min=0, max=1, value=0)
        self.status = Label(label="status", value="idle")
        self.checkpoint = Label(label="checkpoint", value="")
        self.plot = LossPlot()
        self.start_button.changed.connect(lambda _: self.start(resume=False))
        self.resume_button.changed.connect(lambda _: self.start(resume=True))
        self.stop_button.changed.connect(self.stop)
        self.use_button.changed.connect(self.use_model)
        self.extend(
            [
                self.data_root,
                self.out_dir,
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
                self.device,
                self.start_button,
                self.resume_button,
                self.stop_button,
                self.epoch_bar,
                self.batch_bar,
                self.status,
                self.checkpoint,
                self.use_button,
            ]
        )
        self.native.layout().addWidget(self.plot.canvas)
        self._token = None
        self.worker = None

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
            device=self.device.value,
        )

    def start(self, resume: bool = False) -> None:
        from ...engine.runner import CancelToken
        from ...train.loop import Trainer

        data_root, out_dir = Path(str(self.data_root.value)), Path(str(self.out_dir.value))
        try:
            if str(self.out_dir.value) in ("", "."):
                raise ValueError("choose an output folder")
            if resume and not (out_dir / "last-state.safetensors").exists():
                raise ValueError(f"{out_dir} holds no resumable training state")
            self._token = CancelToken()
            trainer = Trainer(data_root, out_dir, self.config(), cancel=self._token)
        except (ValueError, LookupError, OSError) as error:
            self.status.value = f"error: {error}"
            show_error(f"SHISRCNet training: {error}")
            return

        def job(report):
            trainer.events = report
            trainer.run(resume=resume)
            return out_dir / "best.safetensors"

        generator = progress_generator(job)
        self.start_button.enabled = self.resume_button.enabled = False
        self.stop_button.enabled = True
        self.epoch_bar.max = trainer.config.epochs
        self.status.value = "training…"
        self.worker = start_job(
            generator, self._on_event, self._on_finished, self._on_error, self.synchronous
        )

    def stop(self, _=None) -> None:
        if self._token is not None:
            self._token.cancel()
            self.status.value = "stopping after this batch (a resumable checkpoint is saved)…"

    def _on_event(self, event) -> None:
        if event.kind == "batch":
            self.batch_bar.max = max(1, event.batches_per_epoch)
            self.batch_bar.value = event.batch
            self.plot.add_batch(event.step, event.losses.get("total", float("nan")))
            self.status.value = (
                f"epoch {event.epoch + 1}, batch {event.batch}/{event.batches_per_epoch}"
            )
        elif event.kind == "epoch":
            self.epoch_bar.value = min(event.epoch, self.epoch_bar.max)
            self.plot.add_epoch(event.epoch, event.metrics)
            self.checkpoint.value = str(event.checkpoint)

    def _done(self) -> None:
        self.start_button.enabled = self.resume_button.enabled = True
        self.stop_button.enabled = False

    def _on_finished(self, result) -> None:
        self._done()
        if result is CANCELLED:
            self.status.value = "stopped; press Resume to continue"
            show_info("SHISRCNet training stopped; a resumable checkpoint was saved")
            return
        self.best = result
        self.checkpoint.value = str(result)
        self.use_button.enabled = result.exists()
        self.status.value = "done"

    def _on_error(self, error) -> None:
        self._done()
        self.status.value = f"error: {error}"
        show_error(f"SHISRCNet training: {error}")

    def use_model(self, _=None) -> None:
        """Point the Super-resolve and Classify tiles widgets at the best checkpoint."""
        for widget in list(LIVE_JOB_WIDGETS):
            try:
                widget.model.value = CHECKPOINT_CHOICE
                widget.checkpoint.value = self.best
            except RuntimeError:  # its dock was closed and its Qt widgets deleted
                LIVE_JOB_WIDGETS.discard(widget)
