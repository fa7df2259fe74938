"""Evaluators on frozen features."""
