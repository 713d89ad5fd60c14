"""Build tiny real artifacts for tests: a WordPiece tokenizer, random-init encoders, a Hub-layout mirror."""

from __future__ import annotations

import random
from pathlib import Path

from datasets import ClassLabel, Dataset, Features, List, Value
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import AutoConfig, AutoModel, PreTrainedTokenizerFast

EMOTIONS = ["sadness", "joy", "love", "anger", "fear", "surprise"]
CUES = {
    "sadness": "i feel so lonely and miss my friends",
    "joy": "i am thrilled and happy about today",
    "love": "i adore you and feel so loving",
    "anger": "i am furious and so annoyed with this",
    "fear": "i feel scared and afraid of the dark",
    "surprise": "i am amazed and shocked by the news",
}
FILLER = ["really", "very", "quite", "today", "now", "again", "still", "just"]

TINY_SIZES = {
    "bert": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
    "distilbert": dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64),
    "squeezebert": dict(
        hidden_size=32,
        embedding_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        q_groups=2,
        k_groups=2,
        v_groups=2,
        post_attention_groups=1,
        intermediate_groups=2,
        output_groups=2,
    ),
    "roberta": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64),
}


def emotion_text(label: str, rng: random.Random) -> str:
    words = CUES[label].split() + rng.sample(FILLER, k=rng.randint(0, 4))
    return " ".join(words)


def build_tokenizer(path: Path) -> PreTrainedTokenizerFast:
    """A real WordPiece tokenizer (BERT-style, uncased) trained on the test vocabulary."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    corpus = list(CUES.values()) + [" ".join(FILLER), "the a and of to is in it happy sad news text label"]
    tok.train_from_iterator(corpus * 5, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=128,
    )
    fast.save_pretrained(path)
    return fast


def build_tiny_model(path: Path, model_type: str, tokenizer: PreTrainedTokenizerFast) -> Path:
    """A random-init encoder of `model_type`, saved with its tokenizer so `from_pretrained(path)` works."""
    config = AutoConfig.for_model(
        model_type,
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        max_position_embeddings=130,
        **TINY_SIZES[model_type],
    )
    AutoModel.from_config(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def write_hub_dataset(root: Path, config_name: str, splits: dict[str, Dataset]) -> Path:
    """Write `splits` as a Hub-layout dataset folder (README configs + parquet shards)."""
    lines = ["---", "configs:", f"- config_name: {config_name}", "  data_files:"]
    for split, ds in splits.items():
        (root / config_name).mkdir(parents=True, exist_ok=True)
        ds.to_parquet(root / config_name / f"{split}-00000-of-00001.parquet")
        lines += [f"  - split: {split}", f"    path: {config_name}/{split}-*"]
    (root / "README.md").write_text("\n".join(lines + ["---", ""]))
    return root


def write_tiny_mirror(mirror: Path, n: int = 48, seed: int = 0) -> Path:
    """Tiny copies of the three datasets in the layout (and with the features) of the real ones."""
    rng = random.Random(seed)
    sizes = {"train": n, "validation": n // 2, "test": n // 2}

    emotion = {}
    for split, size in sizes.items():
        labels = [i % len(EMOTIONS) for i in range(size)]
        features = Features({"text": Value("string"), "label": ClassLabel(names=EMOTIONS)})
        texts = [emotion_text(EMOTIONS[y], rng) for y in labels]
        emotion[split] = Dataset.from_dict({"text": texts, "label": labels}, features=features)
    write_hub_dataset(mirror / "dair-ai" / "emotion", "split", emotion)

    go_names = [f"emotion_{i}" for i in range(26)] + ["surprise", "neutral"]
    go = {}
    for split, size in sizes.items():
        labels = [sorted({i % 28, (i * 7) % 28}) for i in range(size)]
        features = Features(
            {"text": Value("string"), "labels": List(ClassLabel(names=go_names)), "id": Value("string")}
        )
        texts = [emotion_text(EMOTIONS[i % 6], rng) for i in range(size)]
        go[split] = Dataset.from_dict({"text": texts, "labels": labels, "id": [str(i) for i in range(size)]}, features)
    write_hub_dataset(mirror / "google-research-datasets" / "go_emotions", "simplified", go)

    sem_names = [
        "anger",
        "anticipation",
        "disgust",
        "fear",
        "joy",
        "love",
        "optimism",
        "pessimism",
        "sadness",
        "surprise",
        "trust",
    ]
    sem = {}
    for split, size in sizes.items():
        columns = {
            "ID": [f"2018-{i}" for i in range(size)],
            "Tweet": [emotion_text(EMOTIONS[i % 6], rng) for i in range(size)],
        }
        for j, name in enumerate(sem_names):
            columns[name] = [(i + j) % 3 == 0 for i in range(size)]
        features = Features({"ID": Value("string"), "Tweet": Value("string"), **{n: Value("bool") for n in sem_names}})
        sem[split] = Dataset.from_dict(columns, features=features)
    write_hub_dataset(mirror / "SemEvalWorkshop" / "sem_eval_2018_task_1", "subtask5.english", sem)
    return mirror


def wandb_records(run_file: Path):
    """The records of an offline W&B run's `.wandb` file (a LevelDB-style record log), as wandb protobufs."""
    from wandb.proto import wandb_internal_pb2

    data = run_file.read_bytes()
    assert data[:4] == b":W&B", "not a W&B transaction log"
    block, pos, pending = 32768, 7, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # block trailer too small for a header: skip to the next block
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4 : pos + 6], "little"), data[pos + 6]
        if kind == 0:  # zero padding
            break
        pending += data[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):  # FULL or LAST: a whole record
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def finished_wandb_records(run_file: Path, timeout: float = 60.0) -> list:
    """The records of a finished offline W&B run. `wandb.finish()` can return before W&B's own service has written
    the last records, so wait (up to `timeout` s) until the run's `exit` record is in the file."""
    import time

    deadline = time.monotonic() + timeout
    while True:
        records = list(wandb_records(run_file))
        if any(r.WhichOneof("record_type") == "exit" for r in records) or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def wandb_logged_keys(run_file: Path) -> set[str]:
    """Keys of an offline W&B run's history rows and of its summary (what the run page shows), from its `.wandb`."""
    keys = set()
    for record in finished_wandb_records(run_file):
        kind = record.WhichOneof("record_type")
        if kind in ("history", "summary"):
            items = record.history.item if kind == "history" else record.summary.update
            keys |= {item.key or "/".join(item.nested_key) for item in items}
    return keys


def wandb_history_keys(run_file: Path) -> set[str]:
    """Metric keys logged to an offline W&B run, read from its `.wandb` file."""
    keys = set()
    for record in finished_wandb_records(run_file):
        if record.WhichOneof("record_type") == "history":
            keys |= {item.key or "/".join(item.nested_key) for item in record.history.item}
    return keys


def wandb_run_info(run_file: Path) -> dict:
    """Name, group, tags and job type an offline W&B run was started with: its `.wandb` file's first `run` record."""
    run = next(r.run for r in wandb_records(run_file) if r.WhichOneof("record_type") == "run")
    return {"name": run.display_name, "group": run.run_group, "tags": set(run.tags), "job_type": run.job_type}
