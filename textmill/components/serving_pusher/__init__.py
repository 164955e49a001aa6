from textmill.components.serving_pusher.component import ServingPusher

__all__ = ["ServingPusher"]
