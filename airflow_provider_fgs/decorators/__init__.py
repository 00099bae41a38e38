"""TaskFlow decorators: ``@task.functiongraph``."""
