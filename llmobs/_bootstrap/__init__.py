"""The directory ``llmobs run`` puts first on PYTHONPATH: its ``sitecustomize`` starts llmobs."""
