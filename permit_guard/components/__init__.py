"""From a request to the component it is about: lookup, spec resolution, argument binding."""
