/**
 * Runs a user callback. Its exception is rethrown on its own task, like an exception in an
 * EventTarget listener: reported, but it neither breaks the stream nor is swallowed.
 */
export function invoke<A extends unknown[]>(callback: (...args: A) => void, ...args: A): void {
  try {
    callback(...args);
  } catch (error) {
    setTimeout(() => {
      throw error;
    });
  }
}
