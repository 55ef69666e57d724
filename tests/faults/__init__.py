"""Hostile hosts: the fault matrix and fault isolation."""
