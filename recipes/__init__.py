"""The recipes shipped with domadapt, as package data: setup.cfg installs this folder as
``domadapt.recipes`` so that ``domadapt.recipe_loader.recipes_dir()`` finds it in a checkout, an
editable install and a wheel alike."""
