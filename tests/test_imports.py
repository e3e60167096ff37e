"""Layers point one way: no import cycles among the modules of gan_jax.

Read from the source with `ast` (nothing is imported), counting imports inside
functions too, since a deferred import that closes a cycle still ties the two
modules together. A module may import its own package (`gan_jax.models.mlp`
imports the registries from `gan_jax.models`): Python runs the package first.
"""

import ast
import pathlib

PACKAGE_DIR = pathlib.Path(__file__).resolve().parent.parent / "gan_jax"


def _modules() -> dict[str, pathlib.Path]:
  modules = {}
  for path in PACKAGE_DIR.rglob("*.py"):
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    if parts[-1] == "__init__":
      parts = parts[:-1]
    modules[".".join(parts)] = path
  return modules


def _imported_names(module: str, path: pathlib.Path):
  """Every dotted name an import statement of `module` may refer to."""
  package = module if path.name == "__init__.py" else module.rpartition(".")[0]
  for node in ast.walk(ast.parse(path.read_text())):
    if isinstance(node, ast.Import):
      yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:  # relative: from the package, up level - 1 packages
        anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
        base = ".".join(anchor + ([base] if base else []))
      yield base
      # `from package import name`: a submodule, or a name in the package.
      yield from (f"{base}.{alias.name}" for alias in node.names)


def import_graph() -> dict[str, set[str]]:
  modules = _modules()
  graph = {module: set() for module in modules}
  for module, path in modules.items():
    for name in _imported_names(module, path):
      while name and name not in modules:
        name = name.rpartition(".")[0]
      if name and name != module and not module.startswith(name + "."):
        graph[module].add(name)
  return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
  """Strongly connected components of more than one module (Tarjan)."""
  order, lowest, stack, on_stack, found = {}, {}, [], set(), []

  def visit(module):
    order[module] = lowest[module] = len(order)
    stack.append(module)
    on_stack.add(module)
    for target in graph[module]:
      if target not in order:
        visit(target)
        lowest[module] = min(lowest[module], lowest[target])
      elif target in on_stack:
        lowest[module] = min(lowest[module], order[target])
    if lowest[module] == order[module]:
      component = []
      while not component or component[-1] != module:
        component.append(stack.pop())
        on_stack.discard(component[-1])
      if len(component) > 1:
        found.append(sorted(component))

  for module in graph:
    if module not in order:
      visit(module)
  return found


def test_the_cycle_finder_finds_a_cycle():
  graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
  assert cycles(graph) == [["a", "b", "c"]]
  assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_graph_sees_deferred_and_package_imports():
  graph = import_graph()
  # A module-level import, an import inside a function, and `from package
  # import submodule`.
  assert "gan_jax.sharding" in graph["gan_jax.step"]
  assert "gan_jax.evaluation.image_evaluation" in graph["gan_jax.evaluation.evaluate"]
  assert "gan_jax.data.pipeline" in graph["gan_jax.train"]


def test_no_import_cycles_in_gan_jax():
  assert cycles(import_graph()) == []


def test_lower_layers_do_not_import_higher_ones():
  graph = import_graph()
  # The data pipeline and the models know the mesh axis, not the step.
  for module in ("gan_jax.data.pipeline", "gan_jax.models", "gan_jax.models.layers"):
    assert "gan_jax.step" not in graph[module]
  # Evaluation never imports the training loop.
  for module in graph:
    if module.startswith("gan_jax.evaluation"):
      assert "gan_jax.train" not in graph[module], module
