"""What the learned representations know: gene-property classifiers on embeddings (a batched
logistic-regression engine), their baselines and comparison, and the transfer to lncRNAs.
"""
