"""The exceptions isovec raises, each with isovec's message (which says what to do).

Every one is an ``IsovecError``; those about the caller's input are also ``ValueError``\\ s,
those about files and the store also ``OSError``\\ s, so code written for Chroma's or the
standard library's exceptions catches them too.
"""


class IsovecError(Exception):
    """An error reported by isovec."""


class InvalidInputError(IsovecError, ValueError):
    """Bad input: a wrong argument, filter, text or document."""


class NotFoundError(InvalidInputError):
    """No collection of that name (``get_collection``, ``delete_collection``)."""


class DuplicateIDError(InvalidInputError):
    """An id given twice in one call, or ``add`` of an id the collection already has."""


class DimensionError(InvalidInputError):
    """A vector whose number of dimensions is not the collection's."""


class PipelineMismatchError(InvalidInputError):
    """A pipeline that does not make the collection's vectors."""


class ModelError(IsovecError):
    """A model or transform that cannot be found, read or run."""


class StoreError(IsovecError, OSError):
    """The store directory cannot be read or written, or is damaged."""


class StoreLockedError(StoreError):
    """Another process has the store open."""


class ServerUnreachableError(IsovecError, ConnectionError):
    """No answer from the ``isovec serve`` process that ``isovec.connect`` was given."""


__all__ = [
    "IsovecError",
    "InvalidInputError",
    "NotFoundError",
    "DuplicateIDError",
    "DimensionError",
    "PipelineMismatchError",
    "ModelError",
    "StoreError",
    "StoreLockedError",
    "ServerUnreachableError",
]
