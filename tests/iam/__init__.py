"""IAM as AWS would evaluate it, for the tests: moto never checks a caller's permissions, so the calls
O's functions make are recorded while their real handlers run under moto, and each call is evaluated
against the role policy the synthesized template gives that function."""
