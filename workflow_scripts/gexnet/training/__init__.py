"""Training models on their data: processes and devices, DDP, accumulation, optimiser,
checkpoints and resume, metrics; and exporting what a trained model learned (gene embeddings).
"""
