"""CodegenOptions: the code generator's settings, written once (imports only pydantic).

The codegen stage's config subclasses this class, and ``conf/stage/codegen/default.yaml``
repeats these defaults (a test holds them equal), so a default lives in one place.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, NonNegativeInt


class CodegenOptions(BaseModel):
    """How the integer graph becomes C, and how the result is checked on the host.

    ``fuse_pool``: fuse a 2x2 stride-2 max-pool into the convolution before it (less RAM, faster).
    ``fuse_blocks``: run [1x1 expand ->] depthwise -> 1x1 project [-> add] chains as one streamed
    kernel with a ring of rows (:mod:`malak_pipe.mcu.fusion`): their inner tensors never exist whole.
    ``host_check_images``: random inputs run through the generated C compiled for the host and
    compared bit for bit with the golden reference (0 to skip). ``seed``: of those inputs.
    ``softmax``: a final Softmax runs on the MCU with an int8 output (``int8``), or is left to the
    host (``host``: the firmware outputs its int8 input, the logits; same top-1).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    fuse_pool: bool = True
    fuse_blocks: bool = True
    host_check_images: NonNegativeInt = 32
    seed: int = 0
    softmax: Literal["int8", "host"] = "int8"
