"""orchard's custom triggers, only for AWS APIs the Amazon provider lacks."""
