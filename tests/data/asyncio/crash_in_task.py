# A crash inside a coroutine: the task named "crasher" calls ctypes.string_at(0) while a
# second task waits for it. Run under crashcatch by tests/asyncio_tasks.rs.
import asyncio
import ctypes


async def crash_now():
    await asyncio.sleep(0)
    ctypes.string_at(0)  # CRASH-LINE task


async def main():
    crasher = asyncio.create_task(crash_now(), name="crasher")
    await crasher  # AWAIT-LINE main


asyncio.run(main())
