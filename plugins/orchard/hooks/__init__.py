"""orchard's custom hooks, only for AWS APIs the Amazon provider lacks."""
