from textmill.components.model_validator.component import ModelValidator

__all__ = ["ModelValidator"]
