"""The deploy suite: the generated CloudFormation template, linted and deployed to an emulator."""


def pytest_configure(config):
    config.addinivalue_line("markers", "deploy: the generated deploy template (cfn-lint, CloudFormation on an emulator)")
