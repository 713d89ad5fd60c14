"""Datasets by name and user files, labels, tokenization (and the on-disk cache of user files' tokenized rows) and
batching: one LightningDataModule per dataset.

May import utils only (never models); imported by every layer above it.
"""
