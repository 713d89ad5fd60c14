"""The script a user writes without us: MiniLM fine-tuned on dair-ai/emotion with transformers' Trainer, at its
fastest documented settings — what `bench_train.py` times `make train` against.

Tokenize (max 96 tokens, as ours), length-grouped batches of 32, fused AdamW at lr 1e-4 with 10 % linear warm-up
and weight decay 0.01, clipping to norm 1, bf16 where the machine has it natively, evaluation after every epoch
with the best checkpoint kept, then the test split and the model saved. Its last line starts with `done:`.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
from datasets import load_dataset
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainingArguments,
)

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--max-steps", type=int, default=-1)
    parser.add_argument("--tiny", help="JSON config sizes: a random-init model of MiniLM's architecture")
    args = parser.parse_args()
    model_path = str(Path(os.environ["EMO_MODEL_DIR"]) / MODEL)
    data = load_dataset(str(Path(os.environ["EMO_DATA_DIR"]) / "dair-ai" / "emotion"), "split")
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    data = data.map(lambda b: tokenizer(b["text"], truncation=True, max_length=96), batched=True)
    data = data.remove_columns(["text"]).rename_column("label", "labels")
    num_labels = data["train"].features["labels"].num_classes
    if args.tiny:
        config = AutoConfig.from_pretrained(model_path, num_labels=num_labels, **json.loads(args.tiny))
        model = AutoModelForSequenceClassification.from_config(config)
    else:
        model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=num_labels)
    on_gpu = torch.cuda.is_available()
    bf16 = torch.cuda.is_bf16_supported() if on_gpu else torch.cpu._is_amx_tile_supported()
    training = TrainingArguments(
        output_dir=str(args.out),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=32,
        per_device_eval_batch_size=128,
        learning_rate=1e-4,
        weight_decay=0.01,
        warmup_steps=0.1,  # a float: the ratio of all steps (transformers 5)
        max_grad_norm=1.0,
        optim="adamw_torch_fused",
        train_sampling_strategy="group_by_length",
        bf16=bf16,
        use_cpu=not on_gpu,
        eval_strategy="epoch",
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        report_to="none",
        seed=42,
    )

    def accuracy(prediction) -> dict:
        # with group_by_length the evaluation batches are length-grouped too: compare with the returned label_ids
        return {"accuracy": float((np.argmax(prediction.predictions, -1) == prediction.label_ids).mean())}

    trainer = Trainer(
        model=model,
        args=training,
        train_dataset=data["train"],
        eval_dataset=data["validation"],
        data_collator=DataCollatorWithPadding(tokenizer),
        compute_metrics=accuracy,
    )
    trainer.train()
    test = trainer.evaluate(data["test"], metric_key_prefix="test")
    trainer.save_model(str(args.out / "model"))
    print(f"done: test/accuracy {test['test_accuracy']:.4f}", flush=True)


if __name__ == "__main__":
    main()
