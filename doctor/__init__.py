"""``make doctor``: a read-only preflight of an AWS account and region before the first deploy."""
