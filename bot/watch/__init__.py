"""The post-deploy watch on Slack: its alert, its lines on the card, its adapter."""
