"""Training data: dataset indexing, patient-level splits, LR/HR pairs."""
