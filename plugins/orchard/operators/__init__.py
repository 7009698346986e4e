"""orchard's custom operators, only for AWS APIs the Amazon provider lacks."""
