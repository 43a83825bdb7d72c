"""The enums of abi/plexus/types.h as IntEnums. Every plexus function here
takes an enum member, its integer, or its name in any case ("sum",
"float32", "shared_host")."""
import enum


class DType(enum.IntEnum):
    INT8 = 0
    UINT8 = 1
    INT32 = 2
    UINT32 = 3
    INT64 = 4
    UINT64 = 5
    FLOAT16 = 6
    BFLOAT16 = 7
    FLOAT32 = 8
    FLOAT64 = 9


class ReduceOp(enum.IntEnum):
    SUM = 0
    PROD = 1
    MIN = 2
    MAX = 3
    AVG = 4


class MemKind(enum.IntEnum):
    HOST = 0
    SHARED_HOST = 1
    PINNED_HOST = 2
    DEVICE = 3


class Coll(enum.IntEnum):
    ALL_REDUCE = 0
    REDUCE = 1
    BROADCAST = 2
    ALL_GATHER = 3
    GATHER = 4
    REDUCE_SCATTER = 5
    BARRIER = 6
    SEND = 7
    RECV = 8


class Algorithm(enum.IntEnum):
    AUTO = 0
    ONE_SHOT = 1
    TWO_SHOT = 2
    RING = 3
    TREE = 4
    KARY_TREE = 5
    COPY = 6
    CPU_STAR = 7
    LOW_LATENCY = 8
    LIBRARY = 9


class Threading(enum.IntEnum):
    SINGLE = 0
    PER_COMM = 1
    MULTIPLE = 2


class Pressure(enum.IntEnum):
    LOW = 0
    MEDIUM = 1
    HIGH = 2


# PLX_CAP_* bits of BackendProps.capabilities beyond the per-collective bits.
CAPABILITIES = {
    "split": 1 << 16, "abort": 1 << 17, "async_status": 1 << 18, "stream_ordered": 1 << 19,
    "graph_capture": 1 << 20, "mem_alloc": 1 << 21, "mem_register": 1 << 22,
    "defragment": 1 << 23, "topology": 1 << 24, "queue": 1 << 25, "thread_ranks": 1 << 26,
    "wire_precision": 1 << 27, "no_contribution": 1 << 28, "group": 1 << 29,
    "multi_node": 1 << 30,
}


def to_enum(cls, value, what):
    """cls member for a member, an int or a name; InvalidArgument naming
    `what` and the accepted names otherwise."""
    from .errors import InvalidArgument
    if isinstance(value, str):
        member = cls.__members__.get(value.upper())
        if member is not None:
            return member
    elif isinstance(value, int) and not isinstance(value, bool):
        try:
            return cls(value)
        except ValueError:
            pass
    names = ", ".join(name.lower() for name in cls.__members__)
    raise InvalidArgument(f"{what}: {value!r} is not a {cls.__name__} (one of {names})")


def mask_names(cls, mask):
    """The lower-case names of the members whose bit is set in mask."""
    return [m.name.lower() for m in cls if mask & (1 << m.value)]
