from cyclegan_tf.cli.measure_video import main

raise SystemExit(main())
