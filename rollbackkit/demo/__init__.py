"""The demo: a synthetic churn project taken through register, deploy, degrade and roll back."""
