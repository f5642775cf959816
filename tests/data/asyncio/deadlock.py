# A deadlocked asyncio program: two named tasks wait for an Event and a Queue nobody feeds,
# under gather() in the main task. Prints "ready" once every task is suspended; then waits for
# ever. Dumped by tests/asyncio_tasks.rs.
import asyncio


async def wait_for_event(event):
    await event.wait()  # AWAIT-LINE event


async def read_queue(queue):
    return await queue.get()  # AWAIT-LINE queue


async def main():
    event = asyncio.Event()
    queue = asyncio.Queue()
    a = asyncio.create_task(wait_for_event(event), name="event-waiter")
    b = asyncio.create_task(read_queue(queue), name="queue-reader")
    asyncio.get_running_loop().call_later(0.2, print, "ready")
    await asyncio.gather(a, b)  # AWAIT-LINE gather


asyncio.run(main())
