;; Hostile: grows a table without end. The host must cap table elements, as it caps memory.
;;
;; Rust cannot emit `table.grow`, so this component is written by hand. wasmtime's `Component::new` and
;; `Component::from_file` accept this text directly; `wasm-tools parse table.wat -o table.wasm` makes a binary.
;;
;; It exports the interface `hostile:table/attack`:
;;
;;   /// Grows the table 1000 elements at a time until `table.grow` fails (returns -1), then returns the size
;;   /// reached. Returns only if the host refuses a growth (the refusal may also trap instead).
;;   bomb: func() -> u32;
;;
;;   /// Grows the table once by `delta` elements; returns the old size, or -1 when the growth was refused.
;;   grow: func(delta: u32) -> s32;
;;
;;   /// The table's current size in elements.
;;   size: func() -> u32;
(component
  (core module $tables
    (table $t 1 funcref)

    (func (export "bomb") (result i32)
      (block $refused
        (loop $again
          (br_if $refused
            (i32.eq (table.grow $t (ref.null func) (i32.const 1000)) (i32.const -1)))
          (br $again)))
      (table.size $t))

    (func (export "grow") (param $delta i32) (result i32)
      (table.grow $t (ref.null func) (local.get $delta)))

    (func (export "size") (result i32)
      (table.size $t)))

  (core instance $instance (instantiate $tables))

  (func $bomb (result u32) (canon lift (core func $instance "bomb")))
  (func $grow (param "delta" u32) (result s32) (canon lift (core func $instance "grow")))
  (func $size (result u32) (canon lift (core func $instance "size")))

  (instance $attack
    (export "bomb" (func $bomb))
    (export "grow" (func $grow))
    (export "size" (func $size)))

  (export "hostile:table/attack" (instance $attack)))
