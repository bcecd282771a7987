"""Human review in Label Studio of the windows batch inference routed to review."""
