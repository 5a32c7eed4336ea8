"""Tandem: combined ketamine/esketamine + CBT care service."""
