"""Entry points of the reference runtime (refrun; later refd and refctl). Nothing is imported
here: each entry point imports what its verb needs, lazily."""
