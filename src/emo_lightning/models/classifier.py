"""The training system: network, loss, metrics and optimizer wiring."""

from __future__ import annotations

from collections.abc import Callable

import lightning as L
import torch
from torch import nn
from torch.amp.grad_scaler import OptState
from torchmetrics import MeanMetric

from emo_lightning.models.clipping import clip_grad_norm
from emo_lightning.models.loop_metrics import build_metrics, headline_metric
from emo_lightning.models.network import EmotionNetwork
from emo_lightning.models.param_groups import ParameterGroups


class EmotionClassifier(L.LightningModule):
    """Fine-tunes an `EmotionNetwork` for single- or multi-label emotion classification.

    Args:
        network: encoder → head → logits.
        loss: maps (logits, labels) to a scalar.
        optimizer: partial optimizer taking parameter groups (AdamW from config).
        scheduler: partial taking (optimizer, num_training_steps), stepped every batch; None for none.
        label_names: one per logit, in order.
        multi_label: sigmoid per label if True, softmax over labels if False.
        threshold: decision threshold of multi-label metrics.
        param_groups: splits the parameters into optimizer groups; default: no weight decay on 1-D parameters.
    """

    def __init__(
        self,
        network: EmotionNetwork,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., torch.optim.lr_scheduler.LRScheduler] | None,
        label_names: list[str],
        multi_label: bool,
        threshold: float = 0.5,
        param_groups: ParameterGroups | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["network", "loss", "optimizer", "scheduler", "param_groups"])
        self.network = network
        self.loss = loss
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.param_groups = param_groups or ParameterGroups()
        self.param_groups.depths(network)  # refuses a layer_decay this backbone cannot take, before training
        self.multi_label = multi_label
        self.threshold = threshold
        metrics = build_metrics(len(label_names), multi_label, threshold)
        self.val_metrics = metrics.clone(prefix="val/")
        self.test_metrics = metrics.clone(prefix="test/")
        # the loss over a whole split, as the metrics: example-weighted, summed over DDP ranks before dividing
        self.val_loss, self.test_loss = MeanMetric(), MeanMetric()

    @property
    def monitor(self) -> str:
        """The metric that picks the best checkpoint unless a callback names another."""
        return f"val/{headline_metric(self.multi_label)}"

    @property
    def metric_names(self) -> list[str]:
        """Every metric validation logs."""
        return sorted(self.val_metrics.keys(keep_base=False)) + ["val/loss"]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.network(input_ids, attention_mask)

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        logits = logits.float()  # probabilities in fp32 whatever the training precision
        return torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)

    def model_step(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self(batch["input_ids"], batch["attention_mask"])
        return self.loss(logits, batch["labels"]), logits

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, _ = self.model_step(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["labels"]))
        return loss

    def _evaluate(self, batch: dict, stage: str, metrics, mean_loss: MeanMetric) -> None:
        loss, logits = self.model_step(batch)
        metrics.update(self.probabilities(logits), batch["labels"].int())
        mean_loss.update(loss.detach().float(), weight=len(batch["labels"]))
        self.log(f"{stage}/loss", mean_loss, on_epoch=True, batch_size=len(batch["labels"]))
        self.log_dict(metrics, on_epoch=True, prog_bar=stage == "val")

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "val", self.val_metrics, self.val_loss)

    def test_step(self, batch: dict, batch_idx: int) -> None:
        self._evaluate(batch, "test", self.test_metrics, self.test_loss)

    @torch.no_grad()
    def split_figures(self, stage: str, logits: torch.Tensor, targets: torch.Tensor) -> dict[str, float]:
        """`stage`'s figures as its evaluation loop logs them (loss included), from the whole split's logits (all
        of them in this process: under DDP, rank 0's final pass)."""
        num_labels = logits.shape[-1]
        metrics = build_metrics(num_labels, self.multi_label, self.threshold, sync_on_compute=False)
        metrics = metrics.clone(prefix=f"{stage}/").to(self.device)
        logits, targets = logits.to(self.device), targets.to(self.device)
        metrics.update(self.probabilities(logits), targets.int())
        figures = {name: float(value) for name, value in metrics.compute().items()}
        return figures | {f"{stage}/loss": float(self.loss(logits.float(), targets))}

    def predict_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        return self.probabilities(self(batch["input_ids"], batch["attention_mask"]))

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clip the true gradients under any precision, fused optimizers included (Lightning refuses
        fused + mixed-precision clipping because of fp16 loss scaling; we unscale first instead). By norm, the
        factor goes into a fused optimizer's own step (`clipping.clip_grad_norm`): no extra pass over the gradients."""
        if not gradient_clip_val:
            return
        scaler = getattr(self.trainer.precision_plugin, "scaler", None)
        if scaler is not None and not already_unscaled(scaler, optimizer):
            scaler.unscale_(optimizer)  # 16-mixed, fused: the scaler's step then skips its own unscaling
        if gradient_clip_algorithm == "value":
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            torch.nn.utils.clip_grad_value_(params, gradient_clip_val)
        else:
            clip_grad_norm(optimizer, gradient_clip_val)

    def configure_optimizers(self):
        optimizer = self.optimizer_factory(self.param_groups(self.network))
        for group in optimizer.param_groups:  # before the scheduler records each group's initial rate
            group["lr"] *= group["lr_scale"]
        if self.scheduler_factory is None:
            return optimizer
        scheduler = self.scheduler_factory(optimizer, num_training_steps=self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def already_unscaled(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer) -> bool:
    """Whether `optimizer`'s gradients were unscaled since the scaler's last update: Lightning's 16-mixed plugin
    unscales an optimizer that does not unscale in its own step (unfused) before clipping; a second unscale_ raises."""
    return scaler._per_optimizer_states[id(optimizer)]["stage"] is OptState.UNSCALED
