"""Built-in trainer plugins: ``full`` fine-tuning and ``lora`` (peft), on HF Accelerate."""
