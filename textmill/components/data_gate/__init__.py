from textmill.components.data_gate.component import DataGate, check_data

__all__ = ["DataGate", "check_data"]
